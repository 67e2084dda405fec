//! The connector against the simulated GitLab: mapping, request counts, 304s on a quiet resync,
//! partial groups on failures, batches halved for complexity, rate limits, filters.

use std::time::Duration;

use surveyor_model::{Collected, Connector, ScopeStatus, SinkClosed};
use surveyor_sim::gitlab::{every_other, project_gid};
use surveyor_sim::{Fault, FaultAction, GITLAB_TOKEN, GitlabFake, Org, OrgSpec};

use super::*;

fn connector(fake: &GitlabFake, dir: &Path, extra: &str) -> GitlabConnector {
    let toml = format!(
        "groups = [\"acme\"]\ntoken = \"{GITLAB_TOKEN}\"\nurl = \"{}\"\nmax_retries = 2\nrequests_per_second = 1000\n{extra}",
        fake.url()
    );
    let config: GitlabConfig = toml::from_str(&toml).unwrap();
    GitlabConnector::new("gl", config, dir).unwrap()
}

/// What the tests ask of a crawl of the group `acme`.
trait OfGroup {
    fn named(&self, kind: &str, name: &str) -> &Observation;
    fn status(&self) -> &ScopeStatus;
    fn partial_reason(&self) -> &str;
}

impl OfGroup for Collected {
    fn named(&self, kind: &str, name: &str) -> &Observation {
        self.observations
            .iter()
            .find(|o| o.entity.kind == kind && o.entity.metadata.name == name)
            .unwrap_or_else(|| panic!("{kind} {name} observed"))
    }

    fn status(&self) -> &ScopeStatus {
        self.outcome.status("acme").expect("the group is reported")
    }

    fn partial_reason(&self) -> &str {
        match self.status() {
            ScopeStatus::Partial { reason } => reason,
            other => panic!("expected partial, got {other:?}"),
        }
    }
}

async fn crawl(c: &GitlabConnector) -> Collected {
    Collected::crawl(c).await.unwrap()
}

fn small() -> Org {
    Org::generate(&OrgSpec::small())
}

/// The repositories the fake serves with `every_other`.
fn served(org: &Org) -> Vec<&surveyor_sim::Repo> {
    org.repos.iter().filter(|r| every_other(r)).collect()
}

#[tokio::test]
async fn a_whole_group_in_the_fewest_requests() {
    let org = small();
    let fake = GitlabFake::start_with(org.clone(), every_other)
        .await
        .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let c = connector(&fake, dir.path(), "page_size = 10");
    let got = crawl(&c).await;
    assert_eq!(got.status(), &ScopeStatus::Complete, "{:?}", got.outcome);
    assert!(
        got.outcome.problems.is_empty(),
        "{:?}",
        got.outcome.problems
    );

    let projects = served(&org);
    assert_eq!(got.of_kind("Component").len(), projects.len());
    assert_eq!(
        got.of_kind("Group").len(),
        org.teams.len() + 1,
        "the root too"
    );
    assert_eq!(got.of_kind("User").len(), org.people.len());

    // Requests: the group, a page of subgroups, one member page per group; per 10 projects a
    // REST page and a GraphQL batch; per 10 users a GraphQL batch. A full last page of projects
    // costs one more REST request: the (empty) page after it, since keyset pages carry no totals.
    let stats = c.stats();
    let groups = org.teams.len() + 1;
    let probe = usize::from(projects.len().is_multiple_of(10));
    assert_eq!(
        stats.rest_requests as usize,
        1 + 1 + groups + projects.len().div_ceil(10) + probe
    );
    assert_eq!(
        stats.graphql_requests as usize,
        projects.len().div_ceil(10) + org.people.len().div_ceil(10)
    );
    assert_eq!(
        fake.stats().requests,
        stats.rest_requests + stats.graphql_requests
    );

    // Each project: owner from its GitLab-dialect CODEOWNERS (or its descriptor), packages,
    // the global id as external id.
    for repo in &projects {
        let o = got
            .observations
            .iter()
            .find(|o| o.external_id == project_gid(repo))
            .unwrap_or_else(|| panic!("{} observed", repo.name));
        let e = &o.entity;
        let team = &org.teams[repo.owner_team];
        // A descriptor names the owner itself (the simulator's use team slugs).
        let declared = repo.files.contains_key("catalog-info.yaml");
        let group = match team.parent {
            _ if declared => team.slug.clone(),
            None => team.slug.clone(),
            Some(_) => {
                let g = got
                    .of_kind("Group")
                    .into_iter()
                    .find(|g| g.entity.metadata.name.ends_with(&team.slug))
                    .unwrap();
                g.entity.metadata.name.clone()
            }
        };
        assert_eq!(
            e.spec_str("owner"),
            Some(format!("group:default/{group}").as_str()),
            "{}",
            repo.name
        );
        assert_eq!(o.declared, declared);
        let slug = &e.metadata.annotations["gitlab.com/project-slug"];
        assert!(
            slug.starts_with("acme/") && slug.ends_with(&repo.name),
            "{slug}"
        );
        assert_eq!(
            e.spec_str("lifecycle"),
            Some(if repo.archived && !o.declared {
                "deprecated"
            } else {
                "production"
            })
        );
        assert!(!e.spec["packageDependencies"].as_array().unwrap().is_empty());
        if !o.declared {
            assert!(
                e.metadata
                    .tags
                    .contains(&repo.language.name().to_lowercase()),
                "the language from GraphQL: {:?}",
                e.metadata.tags
            );
        }
    }
    // Internal dependencies became dependsOn between served components.
    let linked: Vec<&Observation> = got
        .of_kind("Component")
        .into_iter()
        .filter(|o| o.entity.spec.contains_key("dependsOn"))
        .collect();
    assert!(
        !linked.is_empty(),
        "some projects use packages others produce"
    );
    for target in linked[0].entity.spec["dependsOn"].as_array().unwrap() {
        let target = target.as_str().unwrap();
        assert!(
            got.observations
                .iter()
                .any(|o| o.entity.entity_ref().unwrap().to_string() == target),
            "{target} is a catalogued component"
        );
    }

    // Groups nest under the root, and carry their direct members; users know their groups.
    let root = got.named("Group", "acme");
    assert_eq!(root.entity.spec_str("type"), Some("organization"));
    assert_eq!(root.external_id, "gid://gitlab/Group/4000000");
    let nested = org.teams.iter().position(|t| t.parent.is_some()).unwrap();
    let parent = &org.teams[org.teams[nested].parent.unwrap()];
    let nested_name = format!("{}-{}", parent.slug, org.teams[nested].slug);
    let child = got.named("Group", &nested_name);
    assert_eq!(child.entity.spec_str("parent"), Some(parent.slug.as_str()));
    assert!(
        got.named("Group", &parent.slug).entity.spec["children"]
            .as_array()
            .unwrap()
            .iter()
            .any(|c| c == nested_name.as_str())
    );
    let team = &org.teams[0];
    let group = got.named("Group", &team.slug);
    assert_eq!(group.entity.spec_str("parent"), Some("acme"));
    assert_eq!(
        group.entity.spec["members"].as_array().unwrap().len(),
        team.members.len()
    );
    let person = &org.people[team.members[0]];
    let user = got.named("User", &person.login);
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
    assert_eq!(
        user.entity.spec["profile"]["email"].as_str(),
        person.email.as_deref(),
        "the public email from GraphQL"
    );
    assert!(
        user.entity.metadata.annotations["gitlab.com/access-levels"]
            .contains(&format!("acme/{}=maintainer", team.slug))
    );
}

#[tokio::test]
async fn a_quiet_resync_answers_rest_from_304s() {
    let fake = GitlabFake::start_with(small(), every_other).await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let first = crawl(&connector(&fake, dir.path(), "page_size = 10")).await;
    // A new connector (a new process) with the same cache directory.
    let c = connector(&fake, dir.path(), "page_size = 10");
    let second = crawl(&c).await;
    assert_eq!(second.status(), &ScopeStatus::Complete);
    let stats = c.stats();
    assert!(stats.rest_requests > 5);
    assert_eq!(stats.rest_not_modified, stats.rest_requests);
    assert_eq!(first.observations, second.observations);
}

#[tokio::test]
async fn a_failed_page_leaves_the_group_partial() {
    let org = small();
    let fake = GitlabFake::start_with(org.clone(), every_other)
        .await
        .unwrap();
    fake.add_fault(Fault::new("rest:projects:acme", FaultAction::Status(500)).skip(1));
    let dir = tempfile::tempdir().unwrap();
    let got = crawl(&connector(&fake, dir.path(), "page_size = 10")).await;
    let reason = got.partial_reason();
    assert!(reason.contains("projects after 10 listed"), "{reason}");
    assert!(reason.contains("HTTP 500"), "{reason}");
    assert_eq!(got.of_kind("Component").len(), 10, "what was read is kept");
    assert_eq!(got.of_kind("User").len(), org.people.len());

    // A member list that cannot be read: its group and the users are left out, not emptied.
    fake.clear_faults();
    let slug = &org.teams[1].slug;
    fake.add_fault(Fault::new(
        &format!("rest:members:acme/{slug}"),
        FaultAction::BadJson,
    ));
    let got = crawl(&connector(&fake, dir.path(), "page_size = 10")).await;
    let reason = got.partial_reason();
    assert!(
        reason.contains(&format!("members of acme/{slug}")),
        "{reason}"
    );
    assert_eq!(got.of_kind("Group").len(), org.teams.len());
    assert!(got.of_kind("User").is_empty());
    assert_eq!(got.of_kind("Component").len(), served(&org).len());

    // A GraphQL batch that cannot be read: its projects are left out.
    // (A 503 is retried twice first; a cut-off answer is not worth retrying.)
    for (action, times) in [(FaultAction::Truncate, 1), (FaultAction::Status(503), 3)] {
        fake.clear_faults();
        fake.add_fault(Fault::new("graphql:projects", action).times(times));
        let got = crawl(&connector(&fake, dir.path(), "page_size = 10")).await;
        let reason = got.partial_reason();
        assert!(reason.contains("files of 10 projects"), "{reason}");
        assert_eq!(got.of_kind("Component").len(), served(&org).len() - 10);
    }
}

#[tokio::test]
async fn bad_credentials_and_unknown_groups_fail() {
    let fake = GitlabFake::start(small()).await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let toml = format!(
        "groups = [\"acme\"]\ntoken = \"glpat-wrongwrongwrong\"\nurl = \"{}\"",
        fake.url()
    );
    let c = GitlabConnector::new("gl", toml::from_str(&toml).unwrap(), dir.path()).unwrap();
    let got = crawl(&c).await;
    let ScopeStatus::Failed { reason } = got.status() else {
        panic!("{:?}", got.status());
    };
    assert!(reason.contains("401"), "{reason}");
    assert!(
        !reason.contains("wrongwrong"),
        "the token never reaches errors: {reason}"
    );
    assert!(got.observations.is_empty());

    let toml = format!(
        "groups = [\"acme\", \"nope/sub\"]\ntoken = \"{GITLAB_TOKEN}\"\nurl = \"{}\"\ntoken_header = \"private-token\"",
        fake.url()
    );
    let c = GitlabConnector::new("gl", toml::from_str(&toml).unwrap(), dir.path()).unwrap();
    let got = crawl(&c).await;
    assert_eq!(
        got.status(),
        &ScopeStatus::Complete,
        "PRIVATE-TOKEN works too"
    );
    let Some(ScopeStatus::Failed { reason }) = got.outcome.status("nope/sub") else {
        panic!("{:?}", got.outcome);
    };
    assert_eq!(
        reason,
        "group nope/sub not found, or not visible to this token"
    );
}

#[tokio::test]
async fn a_batch_too_complex_is_halved() {
    let org = small();
    let fake = GitlabFake::start(org.clone()).await.unwrap();
    fake.set_max_projects_per_query(4);
    let dir = tempfile::tempdir().unwrap();
    let c = connector(&fake, dir.path(), "page_size = 10");
    let got = crawl(&c).await;
    assert_eq!(got.status(), &ScopeStatus::Complete, "{:?}", got.outcome);
    assert_eq!(got.of_kind("Component").len(), org.repos.len());
    // Projects 10 -> 5 -> 3 per query, and 3 from then on.
    assert!(c.stats().shrinks >= 2, "{:?}", c.stats());
    assert_eq!(fake.stats().too_complex, c.stats().shrinks);
    assert_eq!(c.stats().retries, 0, "halving, not retrying the same batch");

    // Gateway timeouts shrink the batch the same way.
    let fake = GitlabFake::start(org.clone()).await.unwrap();
    fake.add_fault(Fault::new("graphql:projects", FaultAction::Status(504)).min_page(6));
    let c = connector(&fake, dir.path(), "page_size = 10");
    let got = crawl(&c).await;
    assert_eq!(got.status(), &ScopeStatus::Complete, "{:?}", got.outcome);
    assert_eq!(c.stats().shrinks, 1);
}

#[tokio::test]
async fn a_project_gitlab_could_not_read_is_left_out() {
    let org = small();
    let fake = GitlabFake::start(org.clone()).await.unwrap();
    fake.add_fault(Fault::new("graphql:projects", FaultAction::ForbiddenNode).times(1));
    let dir = tempfile::tempdir().unwrap();
    let got = crawl(&connector(&fake, dir.path(), "page_size = 10")).await;
    let reason = got.partial_reason();
    assert!(reason.contains("files of 1 projects"), "{reason}");
    assert!(reason.contains("Deadline Exceeded"), "{reason}");
    assert_eq!(got.of_kind("Component").len(), org.repos.len() - 1);
}

#[tokio::test]
async fn rate_limits_are_waited_out() {
    let org = small();
    let fake = GitlabFake::start(org.clone()).await.unwrap();
    fake.throttle(2);
    let dir = tempfile::tempdir().unwrap();
    let c = connector(&fake, dir.path(), "");
    let got = crawl(&c).await;
    assert_eq!(got.status(), &ScopeStatus::Complete, "{:?}", got.outcome);
    assert_eq!(c.stats().rate_limit_waits, 2, "Retry-After honoured");

    // A window of 8 requests: the connector sees RateLimit-Remaining reach 0 and waits for
    // the reset (requests already in flight may still meet a 429, which is waited out too).
    fake.set_rate_limit(8, Duration::from_secs(2));
    let c = connector(&fake, dir.path(), "");
    let got = crawl(&c).await;
    assert_eq!(got.status(), &ScopeStatus::Complete, "{:?}", got.outcome);
    assert!(c.stats().quota_pauses >= 1, "{:?}", c.stats());

    // A reset further away than allowed: partial, not hung.
    fake.set_rate_limit(3, Duration::from_secs(3600));
    let c = connector(&fake, dir.path(), "max_rate_limit_pause_secs = 1");
    let got = crawl(&c).await;
    assert!(
        got.partial_reason().contains("max_rate_limit_pause_secs"),
        "{:?}",
        got.outcome
    );
}

#[tokio::test]
async fn filters_drop_projects() {
    let org = small();
    let fake = GitlabFake::start(org.clone()).await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let c = connector(
        &fake,
        dir.path(),
        "skip_archived = true\nskip_forks = true\nexclude = [\"acme/payments/**\"]",
    );
    let got = crawl(&c).await;
    assert_eq!(got.status(), &ScopeStatus::Complete);
    let payments = org.teams.iter().position(|t| t.slug == "payments").unwrap();
    let in_payments = |r: &surveyor_sim::Repo| {
        let mut t = Some(r.owner_team);
        while let Some(i) = t {
            if i == payments {
                return true;
            }
            t = org.teams[i].parent;
        }
        false
    };
    let expected = org
        .repos
        .iter()
        .filter(|r| !r.archived && !r.fork && !in_payments(r))
        .count();
    assert_eq!(got.of_kind("Component").len(), expected);
    assert!(expected < org.repos.len());

    // Only the root's own projects and members without subgroups.
    let c = connector(&fake, dir.path(), "include_subgroups = false");
    let got = crawl(&c).await;
    assert_eq!(got.status(), &ScopeStatus::Complete);
    assert_eq!(
        got.of_kind("Component").len(),
        0,
        "every project is in a subgroup"
    );
    assert_eq!(got.of_kind("Group").len(), 1);
    assert_eq!(got.of_kind("User").len(), 1, "the root's owner");
}

#[tokio::test]
async fn inherited_members_are_members_everywhere_below() {
    let org = small();
    let fake = GitlabFake::start(org.clone()).await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let got = crawl(&connector(&fake, dir.path(), "inherited_members = true")).await;
    assert_eq!(got.status(), &ScopeStatus::Complete);
    let owner = got.named("User", &org.people[0].login);
    let member_of = owner.entity.spec["memberOf"].as_array().unwrap();
    assert_eq!(member_of.len(), org.teams.len() + 1, "{member_of:?}");
}

#[tokio::test]
async fn projects_sharing_a_path_keep_apart() {
    let mut org = small();
    // Two projects called `api` in different subgroups.
    let a = org.repos.iter().position(|r| r.owner_team == 0).unwrap();
    let b = org.repos.iter().position(|r| r.owner_team == 1).unwrap();
    org.rename_repo(a, "api");
    org.rename_repo(b, "api");
    let fake = GitlabFake::start(org.clone()).await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let got = crawl(&connector(&fake, dir.path(), "")).await;
    let name_of = |i: usize| {
        got.observations
            .iter()
            .find(|o| o.external_id == project_gid(&org.repos[i]))
            .map(|o| o.entity.metadata.name.clone())
            .unwrap()
    };
    let (first, second) = if a < b { (a, b) } else { (b, a) };
    assert_eq!(name_of(first), "api");
    let team = &org.teams[org.repos[second].owner_team];
    assert_eq!(name_of(second), format!("{}-api", team.slug));
}

#[tokio::test]
async fn a_larger_org_costs_pages_not_projects() {
    let org = Org::generate(&OrgSpec::medium());
    let fake = GitlabFake::start(org.clone()).await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let c = connector(&fake, dir.path(), "");
    let got = crawl(&c).await;
    assert_eq!(got.status(), &ScopeStatus::Complete, "{:?}", got.outcome);
    assert_eq!(got.of_kind("Component").len(), org.repos.len());
    let groups = org.teams.len() + 1;
    let (stats, pages) = (c.stats(), org.repos.len().div_ceil(100));
    let probe = usize::from(org.repos.len().is_multiple_of(100));
    // The group, its subgroups, a member page per group, a page of projects (and the empty page
    // after a full last one): REST.
    assert_eq!(stats.rest_requests as usize, 1 + 1 + groups + pages + probe);
    // Each page's files, and every 100 users: GraphQL.
    assert_eq!(
        stats.graphql_requests as usize,
        pages + org.people.len().div_ceil(100)
    );
}

#[tokio::test]
async fn past_ten_thousand_projects_without_totals() {
    // Where keyset is not offered GitLab answers in offset pages, which past 10,000 records
    // carry no `x-total` and no `rel="last"`: the next link alone is followed.
    let org = Org::generate(&OrgSpec {
        teams: 3,
        people: 10,
        repos: 10_050,
        ..OrgSpec::small()
    });
    let fake = GitlabFake::start(org.clone()).await.unwrap();
    fake.set_keyset(false);
    let dir = tempfile::tempdir().unwrap();
    let c = connector(&fake, dir.path(), "");
    let got = crawl(&c).await;
    assert_eq!(got.status(), &ScopeStatus::Complete, "{:?}", got.outcome);
    assert_eq!(got.of_kind("Component").len(), 10_050);
    assert_eq!(fake.stats().by_target["rest:projects:acme"], 101);
    assert_eq!(fake.stats().by_target["graphql:projects"], 101);
}

#[tokio::test]
async fn a_closed_sink_cancels_the_crawl() {
    let fake = GitlabFake::start(small()).await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let c = connector(&fake, dir.path(), "");
    let (sink, rx) = ObservationSink::channel("gl", 1);
    drop(rx);
    let err = c.crawl(sink).await.unwrap_err();
    assert!(matches!(err, ConnectorError::Cancelled(SinkClosed)));
}

fn project_target(id: u64) -> Target {
    Target {
        scope: "acme".into(),
        kind: "project".into(),
        key: id.to_string(),
    }
}

#[tokio::test]
async fn a_refresh_maps_each_project_as_a_crawl_does() {
    let org = small();
    let fake = GitlabFake::start_with(org.clone(), every_other)
        .await
        .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let c = connector(&fake, dir.path(), "");
    let all: Vec<Target> = served(&org).iter().map(|r| project_target(r.id)).collect();
    assert!(
        !c.refreshes(&all),
        "nothing to refresh from before a whole crawl"
    );
    let crawled = crawl(&c).await;
    assert!(c.refreshes(&all));
    let members = Target {
        kind: "members".into(),
        ..project_target(1)
    };
    assert!(!c.refreshes(&[members]), "members are read with the group");

    let before = fake.stats().requests;
    let got = Collected::refresh(&c, &all[..1]).await.unwrap();
    assert_eq!(
        fake.stats().requests - before,
        2,
        "one project: its REST object and its files"
    );
    assert_eq!(got.outcome.status("acme"), Some(&ScopeStatus::Refreshed));

    let got = Collected::refresh(&c, &all).await.unwrap();
    assert_eq!(
        got.outcome.status("acme"),
        Some(&ScopeStatus::Refreshed),
        "{:?}",
        got.outcome
    );
    assert!(got.outcome.gone.is_empty(), "{:?}", got.outcome.gone);
    assert!(
        crawled
            .of_kind("Component")
            .iter()
            .any(|o| o.entity.spec.contains_key("dependsOn")),
        "the group has internal dependencies to check"
    );
    // Names, owners, dependsOn, descriptors: the same entities a crawl made.
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
async fn a_refresh_confirms_gone_only_what_gitlab_says_is_gone() {
    let org = small();
    let fake = GitlabFake::start_with(org.clone(), every_other)
        .await
        .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let c = connector(&fake, dir.path(), "");
    crawl(&c).await;
    // Two projects whose names their descriptors do not set.
    let ids: Vec<u64> = served(&org)
        .iter()
        .filter(|r| !r.files.contains_key("catalog-info.yaml"))
        .map(|r| r.id)
        .take(2)
        .collect();
    fake.with_org(|o| {
        for r in &mut o.repos {
            if r.id == ids[0] {
                r.active = false;
            } else if r.id == ids[1] {
                r.name = "renamed-by-event".into();
            }
        }
    });
    let targets = [
        project_target(ids[0]),
        project_target(ids[1]),
        project_target(999_999_999),
    ];
    let got = Collected::refresh(&c, &targets).await.unwrap();
    let gone = &got.outcome.gone["acme"];
    let gid = |id: u64| format!("gid://gitlab/Project/{id}");
    assert!(gone.contains(&gid(ids[0])), "{gone:?}");
    assert!(gone.contains(&gid(999_999_999)), "{gone:?}");
    assert!(!gone.contains(&gid(ids[1])), "{gone:?}");
    let renamed = got
        .observations
        .iter()
        .find(|o| o.external_id == gid(ids[1]))
        .expect("the renamed project is read");
    assert_eq!(renamed.entity.metadata.name, "renamed-by-event");

    // A read that fails confirms nothing and fails the group.
    fake.add_fault(Fault::new("rest:project", FaultAction::Status(500)));
    let got = Collected::refresh(&c, &targets).await.unwrap();
    assert!(
        matches!(got.outcome.status("acme"), Some(ScopeStatus::Failed { .. })),
        "{:?}",
        got.outcome
    );
    assert!(got.outcome.gone.is_empty(), "{:?}", got.outcome.gone);
    assert!(got.observations.is_empty());
}
