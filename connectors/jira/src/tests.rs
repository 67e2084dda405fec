//! The connector against the simulated Jira: mapping and requests per flavor, paging, resyncs,
//! removals, key changes, rate limits, refused credentials and lists that fail halfway.

use std::collections::BTreeMap;

use surveyor_model::{Collected, Entity, Observation, ScopeStatus};
use surveyor_sim::jira::{JIRA_API_TOKEN, JIRA_EMAIL, JIRA_PAT};
use surveyor_sim::{JiraFake, JiraFault, JiraFaultAction, JiraFlavor, JiraSite, Org, OrgSpec};

use super::*;

/// The fake listens on 127.0.0.1: the site, and so the scope.
const SITE: &str = "127.0.0.1";

fn cloud(fake: &JiraFake, extra: &str) -> JiraConnector {
    let toml = format!(
        "url = \"{}\"\nemail = \"{JIRA_EMAIL}\"\napi_token = \"{JIRA_API_TOKEN}\"\n{extra}",
        fake.url()
    );
    JiraConnector::new("jira", toml::from_str(&toml).expect("config")).expect("connector")
}

fn datacenter(fake: &JiraFake, extra: &str) -> JiraConnector {
    let toml = format!(
        "url = \"{}\"\nflavor = \"datacenter\"\ntoken = \"{JIRA_PAT}\"\n{extra}",
        fake.url()
    );
    JiraConnector::new("jira", toml::from_str(&toml).expect("config")).expect("connector")
}

/// What the tests ask of a crawl of the site.
trait OfSite {
    fn by_id(&self, external_id: &str) -> &Observation;
    fn status(&self) -> &ScopeStatus;
    fn annotation(&self, external_id: &str, key: &str) -> Option<String>;
}

impl OfSite for Collected {
    fn by_id(&self, external_id: &str) -> &Observation {
        self.observations
            .iter()
            .find(|o| o.external_id == external_id)
            .unwrap_or_else(|| panic!("{external_id} observed"))
    }

    fn status(&self) -> &ScopeStatus {
        self.outcome.status(SITE).expect("the site is reported")
    }

    fn annotation(&self, external_id: &str, key: &str) -> Option<String> {
        self.by_id(external_id)
            .entity
            .metadata
            .annotations
            .get(key)
            .cloned()
    }
}

async fn crawl(c: &JiraConnector) -> Collected {
    Collected::crawl(c).await.unwrap()
}

fn small() -> Org {
    Org::generate(&OrgSpec::small())
}

fn live_components(site: &JiraSite) -> usize {
    site.projects.iter().map(|p| site.components(p).len()).sum()
}

#[tokio::test]
async fn a_cloud_site_becomes_systems_domains_and_components() {
    let org = small();
    let fake = JiraFake::start(&org, JiraFlavor::Cloud).await.unwrap();
    let site = fake.site();
    let got = crawl(&cloud(&fake, "page_size = 4")).await;
    assert_eq!(got.status(), &ScopeStatus::Complete, "{:?}", got.outcome);
    assert!(got.outcome.problems.is_empty());

    let categories: BTreeSet<usize> = site.projects.iter().filter_map(|p| p.category).collect();
    assert_eq!(got.of_kind("Domain").len(), categories.len());
    assert!(!categories.is_empty());
    assert_eq!(got.of_kind("System").len(), site.projects.len());
    assert_eq!(got.of_kind("Component").len(), org.repos.len());
    assert!(got.observations.iter().all(|o| o.scope == SITE));
    // Every person named as an owner is a User of the same crawl, once, with the email Jira
    // shows; an account id is kept as an annotation, not used as a name.
    let users: BTreeSet<String> = got
        .of_kind("User")
        .iter()
        .map(|o| o.entity.entity_ref().unwrap().to_string())
        .collect();
    assert_eq!(users.len(), got.of_kind("User").len(), "each person once");
    let owners: BTreeSet<&str> = got
        .observations
        .iter()
        .filter_map(|o| o.entity.spec_str("owner"))
        .filter(|o| o.starts_with("user:"))
        .collect();
    assert!(!owners.is_empty());
    for owner in &owners {
        assert!(users.contains(*owner), "{owner} is not a User of the crawl");
    }
    for u in got.of_kind("User") {
        let u = &u.entity;
        assert!(
            u.metadata
                .annotations
                .contains_key("jira.surveyor.dev/account-id")
        );
        let email = u.spec["profile"]["email"].as_str();
        let person = org.people.iter().find(|p| p.email.as_deref() == email);
        assert!(email.is_none() || person.is_some(), "{email:?}");
    }

    // People are named by their email's local part, else their display name, never by the
    // account id.
    let user = |person: usize| {
        let p = &org.people[person];
        let name = p
            .email
            .as_deref()
            .and_then(|e| e.split('@').next())
            .unwrap_or(&p.name);
        format!(
            "user:default/{}",
            entity_name(name).expect("people have names")
        )
    };
    let mut deactivated_owners = 0;
    for p in &site.projects {
        let id = format!("project:{}", p.id);
        let e = &got.by_id(&id).entity;
        assert_eq!(e.metadata.name, p.key.to_lowercase());
        assert_eq!(e.metadata.title.as_deref(), Some(p.name.as_str()));
        assert_eq!(got.annotation(&id, PROJECT_KEY).as_deref(), Some(&*p.key));
        assert_eq!(
            e.spec_str("owner"),
            p.lead.map(user).as_deref(),
            "{}",
            p.key
        );
        assert_eq!(
            e.spec_str("domain"),
            p.category
                .map(|c| site.categories[c].name.to_lowercase())
                .as_deref()
        );
        assert_eq!(
            e.metadata.description.is_none(),
            p.description.is_empty(),
            "{}",
            p.key
        );
        let active = got.annotation(&id, "jira.surveyor.dev/lead-active");
        assert_eq!(
            active.as_deref(),
            p.lead
                .map(|l| if site.user_active(l) { "true" } else { "false" })
        );
        for c in site.components(p) {
            let cid = format!("component:{}", c.id);
            let e = &got.by_id(&cid).entity;
            assert_eq!(
                e.entity_ref().unwrap().to_string(),
                format!("component:default/{}", org.repos[c.repo].name),
                "lands on the repository's component"
            );
            assert_eq!(e.spec_str("system"), Some(&*p.key.to_lowercase()));
            assert_eq!(e.spec_str("type"), Some("service"));
            assert_eq!(e.spec_str("lifecycle"), Some("production"));
            let (owner, from) = match (c.lead, p.lead) {
                (Some(l), _) => (Some(l), Some("component-lead")),
                (None, Some(l)) => (Some(l), Some("project-lead")),
                (None, None) => (None, None),
            };
            assert_eq!(e.spec_str("owner"), owner.map(user).as_deref(), "{cid}");
            assert_eq!(
                got.annotation(&cid, "jira.surveyor.dev/owner-from")
                    .as_deref(),
                from
            );
            if owner.is_some_and(|l| !site.user_active(l)) {
                deactivated_owners += 1;
                assert_eq!(
                    got.annotation(&cid, "jira.surveyor.dev/lead-active")
                        .as_deref(),
                    Some("false")
                );
            }
        }
    }
    assert!(deactivated_owners > 0, "the fake has deactivated leads");
}

#[tokio::test]
async fn cloud_pages_with_start_at_and_authenticates_with_basic() {
    let org = small();
    let fake = JiraFake::start(&org, JiraFlavor::Cloud).await.unwrap();
    let site = fake.site();
    let c = cloud(&fake, "page_size = 4");
    let got = crawl(&c).await;
    assert!(got.status().is_complete());

    let stats = fake.stats();
    let expected = site.projects.len().div_ceil(4)
        + site
            .projects
            .iter()
            .map(|p| site.components(p).len().div_ceil(4).max(1))
            .sum::<usize>();
    assert_eq!(stats.requests as usize, expected);
    assert_eq!(c.stats().requests as usize, expected);
    assert_eq!(stats.by_scheme.keys().collect::<Vec<_>>(), ["basic"]);
    let search: Vec<&str> = stats
        .seen
        .iter()
        .filter(|r| r.path == "/rest/api/3/project/search")
        .map(|r| r.query.as_str())
        .collect();
    assert_eq!(search[0], "startAt=0&maxResults=4&expand=lead,description");
    assert_eq!(search[1], "startAt=4&maxResults=4&expand=lead,description");
    for p in &site.projects {
        let path = format!("/rest/api/3/project/{}/component", p.id);
        let pages = site.components(p).len().div_ceil(4).max(1) as u64;
        assert_eq!(stats.by_path.get(&path), Some(&pages), "{path}");
    }
    assert!(stats.seen.iter().all(|r| !r.path.contains("/api/2/")));
}

#[tokio::test]
async fn data_center_reads_bare_arrays_with_a_bearer_token() {
    let org = small();
    let fake = JiraFake::start(&org, JiraFlavor::DataCenter).await.unwrap();
    let site = fake.site();
    let got = crawl(&datacenter(&fake, "")).await;
    assert_eq!(got.status(), &ScopeStatus::Complete, "{:?}", got.outcome);
    assert_eq!(got.of_kind("Component").len(), org.repos.len());

    let stats = fake.stats();
    assert_eq!(stats.requests as usize, 1 + site.projects.len());
    assert_eq!(stats.by_scheme.keys().collect::<Vec<_>>(), ["bearer"]);
    assert_eq!(stats.seen[0].path, "/rest/api/2/project");
    assert_eq!(stats.seen[0].query, "expand=lead,description");
    for p in &site.projects {
        let path = format!("/rest/api/2/project/{}/components", p.id);
        assert_eq!(stats.by_path.get(&path), Some(&1), "{path}");
        // Data Center people are Users named by their username.
        let system = &got.by_id(&format!("project:{}", p.id)).entity;
        let owner = p
            .lead
            .map(|l| format!("user:default/{}", org.people[l].login));
        assert_eq!(system.spec_str("owner"), owner.as_deref());
        if let Some(l) = p.lead {
            assert_eq!(
                got.annotation(&format!("project:{}", p.id), "jira.surveyor.dev/lead"),
                Some(site.user_key(l))
            );
        }
    }
}

#[tokio::test]
async fn pages_shorter_than_asked_for_are_followed() {
    let org = small();
    let fake = JiraFake::start(&org, JiraFlavor::Cloud).await.unwrap();
    fake.set_max_results_cap(3);
    let got = crawl(&cloud(&fake, "page_size = 50")).await;
    assert!(got.status().is_complete());
    assert_eq!(got.of_kind("System").len(), fake.site().projects.len());
    assert_eq!(got.of_kind("Component").len(), org.repos.len());
    let second = fake
        .stats()
        .seen
        .iter()
        .filter(|r| r.path == "/rest/api/3/project/search")
        .nth(1)
        .map(|r| r.query.clone());
    assert_eq!(
        second.as_deref(),
        Some("startAt=3&maxResults=50&expand=lead,description")
    );
}

#[tokio::test]
async fn a_quiet_resync_sees_exactly_the_same() {
    let fake = JiraFake::start(&small(), JiraFlavor::Cloud).await.unwrap();
    let c = cloud(&fake, "");
    let first = crawl(&c).await;
    let second = crawl(&c).await;
    let by_id = |crawl: &Collected| -> BTreeMap<String, Entity> {
        crawl
            .observations
            .iter()
            .map(|o| (o.external_id.clone(), o.entity.clone()))
            .collect()
    };
    assert_eq!(by_id(&first), by_id(&second));
    assert_eq!(
        first.observations.len(),
        by_id(&first).len(),
        "ids are unique"
    );
}

#[tokio::test]
async fn a_removed_component_is_no_longer_seen() {
    let fake = JiraFake::start(&small(), JiraFlavor::Cloud).await.unwrap();
    let site = fake.site();
    let pay = site.project("PAY").unwrap();
    let victim = site.components(pay)[0].id.clone();
    assert!(fake.remove_component(&victim));
    let got = crawl(&cloud(&fake, "")).await;
    assert!(got.status().is_complete(), "a complete site may delete");
    assert!(
        got.observations
            .iter()
            .all(|o| o.external_id != format!("component:{victim}"))
    );
    assert_eq!(got.of_kind("Component").len(), live_components(&site) - 1);
}

#[tokio::test]
async fn a_new_project_key_keeps_every_id() {
    let fake = JiraFake::start(&small(), JiraFlavor::Cloud).await.unwrap();
    let c = cloud(&fake, "");
    let before = crawl(&c).await;
    let pay = fake.site().project("PAY").unwrap().clone();
    assert!(fake.set_project_key("PAY", "PMT"));
    let after = crawl(&c).await;
    let id = format!("project:{}", pay.id);
    assert_eq!(before.by_id(&id).entity.metadata.name, "pay");
    assert_eq!(after.by_id(&id).entity.metadata.name, "pmt");
    assert_eq!(
        after.annotation(&id, PROJECT_KEY).as_deref(),
        Some("PMT"),
        "same id, new key: the reconciler records a rename"
    );
    for comp in fake.site().components(&pay) {
        let e = &after.by_id(&format!("component:{}", comp.id)).entity;
        assert_eq!(e.spec_str("system"), Some("pmt"));
        assert_eq!(e.metadata.annotations[PROJECT_KEY], "PMT");
    }
    assert_eq!(before.observations.len(), after.observations.len());
}

#[tokio::test]
async fn rate_limits_are_waited_out() {
    let org = small();
    let fake = JiraFake::start(&org, JiraFlavor::Cloud).await.unwrap();
    let limited = JiraFaultAction::RateLimited {
        retry_after_secs: 1,
    };
    fake.add_fault(JiraFault::new("projects", limited.clone()).times(1));
    fake.add_fault(JiraFault::new("components:BIL", limited).times(1));
    let c = cloud(&fake, "");
    let got = crawl(&c).await;
    assert_eq!(got.status(), &ScopeStatus::Complete, "{:?}", got.outcome);
    assert_eq!(got.of_kind("Component").len(), org.repos.len());
    assert_eq!(fake.stats().rate_limited, 2);
    let stats = c.stats();
    assert_eq!((stats.retries, stats.rate_limit_waits), (2, 2));
}

#[tokio::test]
async fn refused_credentials_fail_the_site_and_say_why() {
    let fake = JiraFake::start(&small(), JiraFlavor::Cloud).await.unwrap();
    let toml = format!(
        "url = \"{}\"\nemail = \"{JIRA_EMAIL}\"\napi_token = \"revoked\"",
        fake.url()
    );
    let c = JiraConnector::new("jira", toml::from_str(&toml).unwrap()).unwrap();
    let got = crawl(&c).await;
    assert!(got.observations.is_empty());
    let ScopeStatus::Failed { reason } = got.status() else {
        panic!("{:?}", got.outcome)
    };
    assert!(
        reason.starts_with("listing projects after 0 read: /rest/api/3/project/search: HTTP 401: "),
        "{reason}"
    );
    assert!(!reason.contains("revoked"), "{reason}");
    assert_eq!(fake.stats().requests, 1, "401 is not retried");

    // Credentials that lose access mid-crawl fail it too.
    fake.add_fault(JiraFault::new(
        "components:CAT",
        JiraFaultAction::Status(403),
    ));
    let got = crawl(&cloud(&fake, "")).await;
    let ScopeStatus::Failed { reason } = got.status() else {
        panic!("{:?}", got.outcome)
    };
    assert!(reason.starts_with("components of CAT: "), "{reason}");
}

#[tokio::test]
async fn a_failed_component_list_leaves_the_site_partial() {
    let org = small();
    let fake = JiraFake::start(&org, JiraFlavor::Cloud).await.unwrap();
    let site = fake.site();
    fake.add_fault(JiraFault::new(
        "components:BIL",
        JiraFaultAction::Status(500),
    ));
    fake.add_fault(JiraFault::new("components:PAY", JiraFaultAction::BadJson));
    let got = crawl(&cloud(&fake, "max_retries = 0")).await;
    let ScopeStatus::Partial { reason } = got.status() else {
        panic!("{:?}", got.outcome)
    };
    assert!(reason.starts_with("components of "), "{reason}");
    let missing = ["BIL", "PAY"]
        .iter()
        .map(|k| site.components(site.project(k).unwrap()).len())
        .sum::<usize>();
    assert_eq!(got.of_kind("Component").len(), org.repos.len() - missing);
    assert_eq!(got.of_kind("System").len(), site.projects.len());
}

#[tokio::test]
async fn the_mapping_and_the_filters_apply() {
    let fake = JiraFake::start(&small(), JiraFlavor::Cloud).await.unwrap();
    let site = fake.site();
    let pay = site.project("PAY").unwrap();
    let lead = pay.lead.expect("PAY has a lead");
    let extra = format!(
        "projects = [\"pay\"]\ncategories_as_domains = false\nlead_owner_mapping = {{ \"{}\" = \"payments\" }}",
        site.account_id(lead)
    );
    let got = crawl(&cloud(&fake, &extra)).await;
    assert!(got.status().is_complete());
    assert!(got.of_kind("Domain").is_empty());
    assert_eq!(got.of_kind("System").len(), 1);
    let system = &got.by_id(&format!("project:{}", pay.id)).entity;
    assert_eq!(system.spec_str("owner"), Some("group:default/payments"));
    assert_eq!(system.spec.get("domain"), None);
    assert_eq!(got.of_kind("Component").len(), site.components(pay).len());
    let component_lists = fake
        .stats()
        .seen
        .iter()
        .filter(|r| r.path.ends_with("/component"))
        .count();
    assert_eq!(component_lists, 1, "only PAY's components are asked for");
}

#[tokio::test]
async fn a_project_list_cut_short_keeps_what_was_read() {
    let fake = JiraFake::start(&small(), JiraFlavor::Cloud).await.unwrap();
    let site = fake.site();
    fake.add_fault(JiraFault::new("projects", JiraFaultAction::Status(502)).skip(1));
    let got = crawl(&cloud(&fake, "page_size = 2\nmax_retries = 0")).await;
    let ScopeStatus::Partial { reason } = got.status() else {
        panic!("{:?}", got.outcome)
    };
    assert!(
        reason.starts_with("listing projects after 2 read: "),
        "{reason}"
    );
    let mut keys: Vec<&str> = site.projects.iter().map(|p| p.key.as_str()).collect();
    keys.sort_unstable();
    let read: Vec<String> = got
        .of_kind("System")
        .iter()
        .map(|o| o.entity.metadata.name.clone())
        .collect();
    assert_eq!(read, [keys[0].to_lowercase(), keys[1].to_lowercase()]);
    let components: usize = keys[..2]
        .iter()
        .map(|k| site.components(site.project(k).unwrap()).len())
        .sum();
    assert_eq!(got.of_kind("Component").len(), components);

    // A site of the other flavor answers 404 there: say which key to look at.
    fake.clear_faults();
    fake.add_fault(JiraFault::new("projects", JiraFaultAction::Status(404)));
    let got = crawl(&cloud(&fake, "")).await;
    let ScopeStatus::Failed { reason } = got.status() else {
        panic!("{:?}", got.outcome)
    };
    assert!(reason.contains("is `flavor` right?"), "{reason}");
}

mod refresh {
    use surveyor_model::{Connector, ObservationSink, Outcome, Target};

    use super::*;

    fn project(key: &str) -> Target {
        Target {
            scope: SITE.into(),
            kind: "project".into(),
            key: key.into(),
        }
    }

    async fn refresh(c: &JiraConnector, targets: &[Target]) -> (Vec<Observation>, Outcome) {
        let (sink, mut rx) = ObservationSink::channel("jira", 64);
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

    /// A project with at least two components: its id, key and components' ids.
    fn busy_project(fake: &JiraFake) -> (String, String, Vec<String>) {
        let site = fake.site();
        site.projects
            .iter()
            .map(|p| {
                let ids: Vec<String> = site.components(p).into_iter().map(|c| c.id).collect();
                (p.id.clone(), p.key.clone(), ids)
            })
            .find(|(_, _, c)| c.len() >= 2)
            .expect("a project with components")
    }

    #[tokio::test]
    async fn only_projects_and_only_after_a_whole_crawl() {
        let fake = JiraFake::start(&Org::generate(&OrgSpec::small()), JiraFlavor::Cloud)
            .await
            .unwrap();
        let c = cloud(&fake, "");
        let (id, _, _) = busy_project(&fake);
        assert!(!c.refreshes(&[project(&id)]));
        crawl(&c).await;
        assert!(c.refreshes(&[project(&id)]));
        let other = Target {
            kind: "component".into(),
            ..project(&id)
        };
        assert!(!c.refreshes(&[other]));
    }

    #[tokio::test]
    async fn a_changed_project_is_read_alone_and_mapped_as_a_crawl_maps_it() {
        for flavor in [JiraFlavor::Cloud, JiraFlavor::DataCenter] {
            let org = Org::generate(&OrgSpec::small());
            let fake = JiraFake::start(&org, flavor).await.unwrap();
            let c = match flavor {
                JiraFlavor::Cloud => cloud(&fake, ""),
                JiraFlavor::DataCenter => datacenter(&fake, ""),
            };
            crawl(&c).await;
            let (id, key, components) = busy_project(&fake);
            assert!(fake.remove_component(&components[0]));
            let lead = fake.org().people.iter().position(|p| p.active);
            fake.with_site(|s| s.set_project_lead(&key, lead));
            fake.reset_stats();
            let (seen, outcome) = refresh(&c, &[project(&id)]).await;
            let requests = fake.stats().requests;
            assert!(requests <= 3, "{flavor:?}: {requests} requests");
            assert_eq!(outcome.status(SITE), Some(&ScopeStatus::Refreshed));
            assert_eq!(
                outcome.gone[SITE],
                [format!("component:{}", components[0])].into(),
                "{flavor:?}: the component Jira no longer lists"
            );
            // What a whole crawl makes of the same things now.
            let whole = crawl(&c).await;
            let system = seen
                .iter()
                .find(|o| o.external_id == format!("project:{id}"))
                .expect("the project");
            assert_eq!(system.entity, whole.by_id(&system.external_id).entity);
            assert!(system.entity.spec.contains_key("owner"), "its new lead");
            let parts: Vec<&Observation> = seen
                .iter()
                .filter(|o| o.external_id.starts_with("component:"))
                .collect();
            assert_eq!(parts.len(), components.len() - 1, "{flavor:?}");
            for o in seen {
                assert_eq!(
                    o.entity,
                    whole.by_id(&o.external_id).entity,
                    "{}",
                    o.external_id
                );
            }
        }
    }

    #[tokio::test]
    async fn a_deleted_project_goes_with_its_components_and_a_failed_read_deletes_nothing() {
        let fake = JiraFake::start(&Org::generate(&OrgSpec::small()), JiraFlavor::Cloud)
            .await
            .unwrap();
        let c = cloud(&fake, "");
        crawl(&c).await;
        let (id, key, components) = busy_project(&fake);
        let (other, other_key, _) = fake
            .site()
            .projects
            .iter()
            .find(|p| p.id != id)
            .map(|p| (p.id.clone(), p.key.clone(), ()))
            .unwrap();
        fake.add_fault(JiraFault::new(
            &format!("project:{other_key}"),
            JiraFaultAction::Status(500),
        ));
        let (seen, outcome) = refresh(&c, &[project(&other)]).await;
        assert!(seen.is_empty());
        assert!(matches!(
            outcome.status(SITE),
            Some(ScopeStatus::Failed { .. })
        ));
        assert!(outcome.gone.is_empty(), "a failure confirms nothing gone");

        assert!(fake.remove_project(&key));
        let (seen, outcome) = refresh(&c, &[project(&id)]).await;
        assert!(seen.is_empty());
        assert_eq!(outcome.status(SITE), Some(&ScopeStatus::Refreshed));
        let mut expected: BTreeSet<String> = components
            .iter()
            .map(|c| format!("component:{c}"))
            .collect();
        expected.insert(format!("project:{id}"));
        assert_eq!(outcome.gone[SITE], expected);
    }

    #[test]
    fn every_field_is_a_listed_key() {
        let table = "url = \"https://x\"\nflavor = \"cloud\"\nemail = \"e\"\napi_token = \"t\"\ntoken = \"p\"\nprojects = []\nexclude_projects = []\nnamespace = \"default\"\nsystem_names = \"key\"\ncategories_as_domains = true\ncomponent_type = \"service\"\nlifecycle = \"production\"\nprefix_component_names = false\ninherit_project_lead = true\nlead_owner_mapping = {}\npage_size = 10\nconcurrency = 1\nrequests_per_second = 1\nmax_retries = 1\nmax_retry_wait_secs = 1\ntimeout_secs = 1\nwebhook_secret = \"s\"";
        let parsed: toml::Table = toml::from_str(table).unwrap();
        let mut keys: Vec<&str> = parsed.keys().map(String::as_str).collect();
        keys.sort_unstable();
        let mut listed = surveyor_model::kit::keys::<JiraConfig>().to_vec();
        listed.sort_unstable();
        assert_eq!(keys, listed);
        assert!(toml::from_str::<JiraConfig>(table).is_ok());
    }
}
