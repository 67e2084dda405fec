//! The connector against the simulated GitHub: mapping, request counts, 304s on a quiet resync,
//! partial orgs on failures, adaptive pages, the quota reserve, secondary limits, app auth.

use std::time::Duration;

use surveyor_model::{
    Collected, Connector, ConnectorError, ObservationSink, ScopeStatus, SinkClosed,
};
use surveyor_sim::{FAKE_TOKEN, FakeApp, Fault, FaultAction, GithubFake, Org, OrgSpec};

use super::*;

fn connector(fake: &GithubFake, dir: &Path, extra: &str) -> GithubConnector {
    let toml = format!(
        "orgs = [\"acme\"]\ntoken = \"{FAKE_TOKEN}\"\napi_url = \"{}\"\nmax_retries = 2\n{extra}",
        fake.url()
    );
    let config: GithubConfig = toml::from_str(&toml).unwrap();
    GithubConnector::new("gh", config, dir).unwrap()
}

/// What the tests ask of a crawl of the org `acme`.
trait OfOrg {
    fn status(&self) -> &ScopeStatus;
}

impl OfOrg for Collected {
    fn status(&self) -> &ScopeStatus {
        self.outcome.status("acme").expect("the org is reported")
    }
}

async fn crawl(c: &GithubConnector) -> Collected {
    Collected::crawl(c).await.unwrap()
}

fn small() -> Org {
    Org::generate(&OrgSpec::small())
}

#[tokio::test]
async fn a_whole_org_in_the_fewest_requests() {
    let org = small();
    let fake = GithubFake::start(vec![org.clone()]).await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let c = connector(&fake, dir.path(), "page_size = 10");
    let got = crawl(&c).await;
    assert_eq!(got.status(), &ScopeStatus::Complete, "{:?}", got.outcome);
    assert!(
        got.outcome.problems.is_empty(),
        "{:?}",
        got.outcome.problems
    );

    assert_eq!(got.of_kind("Component").len(), org.repos.len());
    assert_eq!(got.of_kind("Group").len(), org.teams.len());
    assert_eq!(got.of_kind("User").len(), org.people.len());

    // Requests: one GraphQL page per 10 repos and per 10 teams, one REST page of members.
    let stats = c.stats();
    assert_eq!(
        stats.graphql_requests as usize,
        org.repos.len().div_ceil(10) + org.teams.len().div_ceil(10)
    );
    assert_eq!(stats.rest_requests as usize, org.people.len().div_ceil(100));

    // Each repository: owner from CODEOWNERS (or its descriptor), packages, node id.
    for repo in &org.repos {
        let o = got
            .observations
            .iter()
            .find(|o| o.external_id == surveyor_sim::github::repo_node_id(repo))
            .unwrap_or_else(|| panic!("{} observed", repo.name));
        let e = &o.entity;
        assert_eq!(
            e.spec_str("owner"),
            Some(format!("group:default/{}", org.teams[repo.owner_team].slug).as_str()),
            "{}",
            repo.name
        );
        assert_eq!(o.declared, repo.files.contains_key("catalog-info.yaml"));
        assert_eq!(
            e.metadata.annotations["github.com/project-slug"],
            format!("acme/{}", repo.name)
        );
        // Archived means deprecated, unless the repository's descriptor says otherwise.
        assert_eq!(
            e.spec_str("lifecycle"),
            Some(if repo.archived && !o.declared {
                "deprecated"
            } else {
                "production"
            })
        );
        let deps = e.spec["packageDependencies"].as_array().unwrap();
        assert!(!deps.is_empty());
    }
    // Internal dependencies became dependsOn between the Components.
    let linked = got
        .of_kind("Component")
        .iter()
        .filter(|o| o.entity.spec.contains_key("dependsOn"))
        .count();
    assert!(linked > 0, "some repos use packages others produce");
    let with_dep = got
        .of_kind("Component")
        .into_iter()
        .find(|o| o.entity.spec.contains_key("dependsOn"))
        .unwrap();
    for target in with_dep.entity.spec["dependsOn"].as_array().unwrap() {
        let target = target.as_str().unwrap();
        assert!(
            got.observations
                .iter()
                .any(|o| o.entity.entity_ref().unwrap().to_string() == target),
            "{target} is a catalogued component"
        );
    }
    // Teams nest, and carry their members; users know their teams.
    let groups = got.of_kind("Group");
    let child = groups
        .iter()
        .find(|g| g.entity.spec.contains_key("parent"))
        .expect("a nested team");
    let parent = child.entity.spec_str("parent").unwrap();
    let parent_group = groups
        .iter()
        .find(|g| g.entity.metadata.name == parent)
        .unwrap();
    assert!(
        parent_group.entity.spec["children"]
            .as_array()
            .unwrap()
            .iter()
            .any(|c| c == child.entity.metadata.name.as_str())
    );
    let team = &org.teams[0];
    let group = groups
        .iter()
        .find(|g| g.entity.metadata.name == team.slug)
        .unwrap();
    assert_eq!(
        group.entity.spec["members"].as_array().unwrap().len(),
        team.members.len()
    );
    let person = &org.people[team.members[0]];
    let user = got
        .of_kind("User")
        .into_iter()
        .find(|u| u.entity.metadata.name == person.login)
        .unwrap();
    assert!(
        user.entity.spec["memberOf"]
            .as_array()
            .unwrap()
            .iter()
            .any(|t| t == team.slug.as_str())
    );
    assert_eq!(
        user.entity.spec["profile"]["displayName"].as_str(),
        Some(person.name.as_str())
    );
}

#[tokio::test]
async fn a_quiet_resync_answers_rest_from_304s() {
    let fake = GithubFake::start(vec![small()]).await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let first = crawl(&connector(&fake, dir.path(), "")).await;
    // A new connector (a new process) with the same cache directory.
    let c = connector(&fake, dir.path(), "");
    let second = crawl(&c).await;
    assert_eq!(second.status(), &ScopeStatus::Complete);
    let stats = c.stats();
    assert!(stats.rest_requests > 0);
    assert_eq!(stats.rest_not_modified, stats.rest_requests);
    assert_eq!(first.observations, second.observations);
}

#[tokio::test]
async fn a_failed_page_leaves_the_org_partial() {
    let fake = GithubFake::start(vec![small()]).await.unwrap();
    fake.add_fault(Fault::new("graphql:repositories", FaultAction::Status(500)).skip(1));
    let dir = tempfile::tempdir().unwrap();
    let got = crawl(&connector(&fake, dir.path(), "page_size = 10")).await;
    let ScopeStatus::Partial { reason } = got.status() else {
        panic!("{:?}", got.status());
    };
    assert!(reason.contains("repositories after 10 read"), "{reason}");
    assert!(reason.contains("HTTP 500"), "{reason}");
    assert_eq!(got.of_kind("Component").len(), 10, "what was read is kept");

    for action in [FaultAction::BadJson, FaultAction::Truncate] {
        fake.clear_faults();
        fake.add_fault(Fault::new("graphql:teams", action));
        let got = crawl(&connector(&fake, dir.path(), "")).await;
        assert!(
            matches!(got.status(), ScopeStatus::Partial { .. }),
            "{:?}",
            got.status()
        );
    }
}

#[tokio::test]
async fn bad_credentials_fail_the_org() {
    let fake = GithubFake::start(vec![small()]).await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let toml = format!(
        "orgs = [\"acme\", \"nope\"]\ntoken = \"wrong\"\napi_url = \"{}\"",
        fake.url()
    );
    let c = GithubConnector::new("gh", toml::from_str(&toml).unwrap(), dir.path()).unwrap();
    let got = crawl(&c).await;
    let ScopeStatus::Failed { reason } = got.status() else {
        panic!("{:?}", got.status());
    };
    assert!(reason.contains("401"), "{reason}");
    assert!(
        !reason.contains("wrong"),
        "the token never reaches errors: {reason}"
    );
    assert!(got.observations.is_empty());

    let toml = format!(
        "orgs = [\"nope\"]\ntoken = \"{FAKE_TOKEN}\"\napi_url = \"{}\"",
        fake.url()
    );
    let c = GithubConnector::new("gh", toml::from_str(&toml).unwrap(), dir.path()).unwrap();
    let got = crawl(&c).await;
    assert!(matches!(
        got.outcome.status("nope"),
        Some(ScopeStatus::Failed { .. })
    ));
}

#[tokio::test]
async fn a_page_too_big_to_answer_is_halved() {
    let org = small();
    let fake = GithubFake::start(vec![org.clone()]).await.unwrap();
    fake.add_fault(Fault::new("graphql:repositories", FaultAction::Status(502)).min_page(30));
    let dir = tempfile::tempdir().unwrap();
    let c = connector(&fake, dir.path(), "page_size = 100");
    let got = crawl(&c).await;
    assert_eq!(got.status(), &ScopeStatus::Complete, "{:?}", got.outcome);
    assert_eq!(got.of_kind("Component").len(), org.repos.len());
    // 100 -> 50 -> 25, then pages of 25.
    assert_eq!(c.stats().shrinks, 2);
    assert_eq!(c.stats().retries, 0, "halving, not retrying the same page");

    fake.clear_faults();
    fake.add_fault(
        Fault::new(
            "graphql:repositories",
            FaultAction::GraphqlError("RESOURCE_LIMITS_EXCEEDED".into()),
        )
        .times(1),
    );
    let c = connector(&fake, dir.path(), "");
    assert_eq!(crawl(&c).await.status(), &ScopeStatus::Complete);
    assert_eq!(c.stats().shrinks, 1);
}

#[tokio::test]
async fn the_quota_reserve_pauses_until_reset() {
    let org = small();
    let fake = GithubFake::start(vec![org.clone()]).await.unwrap();
    // Ten points per two seconds, seven in reserve: 1 team page + 4 repo pages need a pause.
    fake.set_graphql_quota(10, Duration::from_secs(2));
    let dir = tempfile::tempdir().unwrap();
    let c = connector(
        &fake,
        dir.path(),
        "page_size = 10\nrate_limit_reserve = 0.7",
    );
    let got = crawl(&c).await;
    assert_eq!(got.status(), &ScopeStatus::Complete, "{:?}", got.outcome);
    assert!(c.stats().quota_pauses >= 1);
    assert_eq!(fake.stats().rate_limited, 0, "never ran the quota dry");

    // A reset further away than allowed: the org is left partial, not hung.
    fake.set_graphql_quota(10, Duration::from_secs(3600));
    let c = connector(
        &fake,
        dir.path(),
        "page_size = 10\nrate_limit_reserve = 0.7\nmax_rate_limit_pause_secs = 1",
    );
    let got = crawl(&c).await;
    let ScopeStatus::Partial { reason } = got.status() else {
        panic!("{:?}", got.status());
    };
    assert!(reason.contains("max_rate_limit_pause_secs"), "{reason}");
}

#[tokio::test]
async fn secondary_limits_are_waited_out() {
    let fake = GithubFake::start(vec![small()]).await.unwrap();
    fake.add_fault(
        Fault::new(
            "graphql:repositories",
            FaultAction::SecondaryLimit {
                retry_after_secs: 1,
            },
        )
        .times(1),
    );
    fake.add_fault(Fault::new("rest:/orgs/acme/members", FaultAction::Status(429)).times(1));
    let dir = tempfile::tempdir().unwrap();
    let c = connector(&fake, dir.path(), "");
    let got = crawl(&c).await;
    assert_eq!(got.status(), &ScopeStatus::Complete, "{:?}", got.outcome);
    assert_eq!(c.stats().rate_limit_waits, 1);
    assert_eq!(c.stats().retries, 2);
}

#[tokio::test]
async fn teams_larger_than_a_page_take_extra_queries() {
    let mut org = Org::generate(&OrgSpec {
        teams: 3,
        people: 260,
        repos: 5,
        ..OrgSpec::small()
    });
    for p in 0..org.people.len() {
        org.move_person(p, 1, 0);
    }
    let fake = GithubFake::start(vec![org.clone()]).await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let c = connector(&fake, dir.path(), "");
    let got = crawl(&c).await;
    assert_eq!(got.status(), &ScopeStatus::Complete);
    let big = got
        .of_kind("Group")
        .into_iter()
        .find(|g| g.entity.metadata.name == org.teams[0].slug)
        .unwrap();
    assert_eq!(big.entity.spec["members"].as_array().unwrap().len(), 260);
    // Repos 1 page, teams 1 page, 260 members = 1 inline + 2 overflow pages.
    assert_eq!(c.stats().graphql_requests, 1 + 1 + 2);
    assert_eq!(fake.stats().by_target["graphql:team"], 2);
}

#[tokio::test]
async fn a_github_app_mints_its_installation_token() {
    let fake = GithubFake::start(vec![small()]).await.unwrap();
    fake.set_app(FakeApp {
        app_id: 4242,
        installation_id: 77,
    });
    let dir = tempfile::tempdir().unwrap();
    std::fs::copy(
        concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/tests/fixtures/test-app-key.pem"
        ),
        dir.path().join("app.pem"),
    )
    .unwrap();
    let toml = format!(
        "orgs = [\"acme\"]\napp_id = 4242\ninstallation_id = 77\nprivate_key_file = \"app.pem\"\napi_url = \"{}\"",
        fake.url()
    );
    let c = GithubConnector::new("gh", toml::from_str(&toml).unwrap(), dir.path()).unwrap();
    let got = crawl(&c).await;
    assert_eq!(got.status(), &ScopeStatus::Complete, "{:?}", got.outcome);
    assert_eq!(
        fake.stats().tokens_issued,
        1,
        "one token, reused for every request"
    );
}

#[tokio::test]
async fn filters_drop_repositories() {
    let org = small();
    let fake = GithubFake::start(vec![org.clone()]).await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let c = connector(
        &fake,
        dir.path(),
        "skip_archived = true\nskip_forks = true\nexclude = [\"payments-*\"]",
    );
    let got = crawl(&c).await;
    let expected = org
        .repos
        .iter()
        .filter(|r| !r.archived && !r.fork && !r.name.starts_with("payments-"))
        .count();
    assert_eq!(got.of_kind("Component").len(), expected);
    assert!(expected < org.repos.len());
}

#[tokio::test]
async fn a_closed_sink_cancels_the_crawl() {
    let fake = GithubFake::start(vec![small()]).await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let c = connector(&fake, dir.path(), "");
    let (sink, rx) = ObservationSink::channel("gh", 1);
    drop(rx);
    let err = c.crawl(sink).await.unwrap_err();
    assert!(matches!(err, ConnectorError::Cancelled(SinkClosed)));
}

#[tokio::test]
async fn a_quiet_resync_pages_members_through_cached_links() {
    // Three pages of members; GitHub's 304s carry no Link header.
    let org = Org::generate(&OrgSpec {
        people: 250,
        ..OrgSpec::small()
    });
    let fake = GithubFake::start(vec![org.clone()]).await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let first = crawl(&connector(&fake, dir.path(), "")).await;
    assert_eq!(first.of_kind("User").len(), 250);
    let c = connector(&fake, dir.path(), "");
    let second = crawl(&c).await;
    assert_eq!(
        second.of_kind("User").len(),
        250,
        "every page, not just the first"
    );
    assert_eq!(
        (c.stats().rest_requests, c.stats().rest_not_modified),
        (3, 3)
    );
}

#[tokio::test]
async fn a_token_outside_the_org_does_not_pass_public_members_off_as_all() {
    let fake = GithubFake::start(vec![small()]).await.unwrap();
    fake.add_outside_token("ghp_outsider");
    let dir = tempfile::tempdir().unwrap();
    let toml = format!(
        "orgs = [\"acme\"]\ntoken = \"ghp_outsider\"\napi_url = \"{}\"",
        fake.url()
    );
    let c = GithubConnector::new("gh", toml::from_str(&toml).unwrap(), dir.path()).unwrap();
    let got = crawl(&c).await;
    let ScopeStatus::Partial { reason } = got.status() else {
        panic!("{:?}", got.status());
    };
    assert!(reason.contains("public_members"), "{reason}");
    assert!(got.of_kind("User").is_empty());
    assert_eq!(got.of_kind("Component").len(), small().repos.len());
}

#[tokio::test]
async fn an_item_behind_saml_leaves_the_rest_of_its_page() {
    let org = small();
    let fake = GithubFake::start(vec![org.clone()]).await.unwrap();
    fake.add_fault(Fault::new("graphql:repositories", FaultAction::ForbiddenNode).times(1));
    let dir = tempfile::tempdir().unwrap();
    let got = crawl(&connector(&fake, dir.path(), "page_size = 10")).await;
    let ScopeStatus::Partial { reason } = got.status() else {
        panic!("{:?}", got.status());
    };
    assert!(
        reason.contains("FORBIDDEN at organization.repositories.nodes.0"),
        "{reason}"
    );
    assert_eq!(got.of_kind("Component").len(), org.repos.len() - 1);
}

#[tokio::test]
async fn a_quota_spent_by_someone_else_is_waited_for() {
    for new_form in [false, true] {
        let fake = GithubFake::start(vec![small()]).await.unwrap();
        fake.set_graphql_quota(100, Duration::from_secs(2));
        fake.use_new_rate_limit_error(new_form);
        fake.spend_graphql_quota();
        let dir = tempfile::tempdir().unwrap();
        let got = crawl(&connector(&fake, dir.path(), "")).await;
        assert_eq!(got.status(), &ScopeStatus::Complete, "{:?}", got.outcome);
        assert!(fake.stats().rate_limited >= 1);
        assert_eq!(got.of_kind("Component").len(), small().repos.len());
    }
}

fn repo_target(id: &str) -> Target {
    Target {
        scope: "acme".into(),
        kind: "repository".into(),
        key: id.into(),
    }
}

#[tokio::test]
async fn a_refresh_maps_each_repository_as_a_crawl_does() {
    let org = small();
    let fake = GithubFake::start(vec![org.clone()]).await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let c = connector(&fake, dir.path(), "");
    let all: Vec<Target> = org
        .live_repos()
        .map(|r| repo_target(&surveyor_sim::github::repo_node_id(r)))
        .collect();
    assert!(
        !c.refreshes(&all),
        "nothing to refresh from before a whole crawl"
    );

    let crawled = crawl(&c).await;
    assert!(c.refreshes(&all));
    let team = Target {
        kind: "team".into(),
        ..repo_target("T_x")
    };
    assert!(
        !c.refreshes(&[team]),
        "a team is not read alone: the org is crawled"
    );

    let before = c.stats().graphql_requests;
    let got = Collected::refresh(&c, &all).await.unwrap();
    assert_eq!(
        c.stats().graphql_requests - before,
        all.len().div_ceil(100) as u64,
        "one request per 100 repositories"
    );
    assert_eq!(
        got.outcome.status("acme"),
        Some(&ScopeStatus::Refreshed),
        "{:?}",
        got.outcome
    );
    assert!(got.outcome.gone.is_empty(), "{:?}", got.outcome.gone);
    // Owners from CODEOWNERS by email, dependsOn from every producer, descriptors laid over:
    // the same entities a crawl made.
    let components = crawled.of_kind("Component");
    assert!(
        components
            .iter()
            .any(|o| o.entity.spec.contains_key("dependsOn")),
        "the org has internal dependencies to check"
    );
    for o in crawled
        .observations
        .iter()
        .filter(|o| o.entity.kind != "User" && o.entity.kind != "Group")
    {
        let again = got
            .observations
            .iter()
            .find(|r| r.external_id == o.external_id)
            .unwrap_or_else(|| panic!("{} refreshed", o.external_id));
        assert_eq!(again.entity, o.entity, "{}", o.external_id);
        assert_eq!(again.declared, o.declared, "{}", o.external_id);
    }
}

#[tokio::test]
async fn a_refresh_confirms_gone_only_what_github_says_is_gone() {
    let org = small();
    let fake = GithubFake::start(vec![org.clone()]).await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let c = connector(&fake, dir.path(), "");
    crawl(&c).await;
    // Three repositories whose names their descriptors do not set.
    let plain: Vec<u64> = org
        .live_repos()
        .filter(|r| !r.files.contains_key("catalog-info.yaml"))
        .map(|r| r.id)
        .take(3)
        .collect();
    let node = |id: u64| {
        let r = org.repos.iter().find(|r| r.id == id).expect("repo");
        surveyor_sim::github::repo_node_id(r)
    };
    let (renamed, deleted, kept) = (&node(plain[0]), &node(plain[1]), &node(plain[2]));
    fake.with_org("acme", |o| {
        for r in &mut o.repos {
            if r.id == plain[0] {
                r.name = "renamed-by-event".into();
            } else if r.id == plain[1] {
                r.active = false;
            }
        }
    });
    let targets = [
        repo_target(renamed),
        repo_target(deleted),
        repo_target(kept),
        repo_target("R_never_was"),
    ];
    let got = Collected::refresh(&c, &targets).await.unwrap();
    let gone = &got.outcome.gone["acme"];
    assert!(gone.contains(deleted.as_str()), "{gone:?}");
    assert!(gone.contains("R_never_was"), "{gone:?}");
    assert!(!gone.contains(renamed.as_str()) && !gone.contains(kept.as_str()));
    let renamed_now = got
        .observations
        .iter()
        .find(|o| &o.external_id == renamed)
        .expect("the renamed repository is read");
    assert_eq!(renamed_now.entity.metadata.name, "renamed-by-event");

    // A read that fails confirms nothing and fails the org.
    fake.add_fault(Fault::new("graphql:nodes", FaultAction::Status(502)));
    let got = Collected::refresh(&c, &targets).await.unwrap();
    assert!(
        matches!(got.outcome.status("acme"), Some(ScopeStatus::Failed { .. })),
        "{:?}",
        got.outcome
    );
    assert!(got.outcome.gone.is_empty(), "{:?}", got.outcome.gone);
    assert!(got.observations.is_empty());
}
