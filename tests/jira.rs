//! The jira connector against the fake Jira through reconcile into the store (SQLite, and
//! Postgres when configured): change ops, 429s, refused credentials, merging with GitHub.

use surveyor_connector_github::{GithubConfig, GithubConnector};
use surveyor_connector_jira::{JiraConfig, JiraConnector};
use surveyor_engine::{ReconcileOptions, RunReport, RunStatus, run_connector};
use surveyor_model::ScopeStatus;
use surveyor_sim::jira::{JIRA_API_TOKEN, JIRA_EMAIL, JIRA_PAT};
use surveyor_sim::{FAKE_TOKEN, GithubFake, JiraFake, JiraFault, JiraFaultAction, JiraFlavor};
use surveyor_sim::{Org, OrgSpec};
use surveyor_store::{ChangeFilter, ChangeOp, Store};
use surveyor_tests::{TestStore, ops_since, sync_once};

async fn sync_cloud(store: &Store, fake: &JiraFake, api_token: &str) -> RunReport {
    let toml = format!(
        "url = \"{}\"\nemail = \"{JIRA_EMAIL}\"\napi_token = \"{api_token}\"\npage_size = 5\nrequests_per_second = 1000",
        fake.url()
    );
    let config: JiraConfig = toml::from_str(&toml).expect("config");
    let c = JiraConnector::new("jira", config).expect("connector");
    sync_once(store, &c).await
}

#[tokio::test]
async fn a_cloud_site_syncs_and_its_changes_are_recorded() {
    for ts in TestStore::all().await {
        let (store, backend) = (&ts.store, ts.backend);
        let org = Org::generate(&OrgSpec::small());
        let fake = JiraFake::start(&org, JiraFlavor::Cloud)
            .await
            .expect("fake");
        let site = fake.site();
        let domains = site
            .projects
            .iter()
            .filter_map(|p| p.category)
            .collect::<std::collections::BTreeSet<_>>()
            .len();
        // Every lead is a User, named as a person (two with one name are one User).
        let mut leads: std::collections::BTreeSet<String> = Default::default();
        for p in &site.projects {
            let components = site.components(p);
            for person in p
                .lead
                .into_iter()
                .chain(components.iter().filter_map(|c| c.lead))
            {
                leads.extend(person_name(&org.people[person]));
            }
        }
        let mut seen = 0;

        let r = sync_cloud(store, &fake, JIRA_API_TOKEN).await;
        assert_eq!(r.status, RunStatus::Succeeded, "{backend}: {r:?}");
        assert_eq!(
            r.counts.entities.created as usize,
            domains + site.projects.len() + org.repos.len() + leads.len(),
            "{backend}"
        );
        ops_since(store, &mut seen).await;

        // Nothing changed at Jira: nothing is written.
        let before = store.table_counts().await.expect("counts");
        let r = sync_cloud(store, &fake, JIRA_API_TOKEN).await;
        assert_eq!(r.counts.entities.changes(), 0, "{backend}: {:?}", r.counts);
        assert_eq!(
            store.table_counts().await.expect("counts").changes,
            before.changes,
            "{backend}"
        );

        // One component of many is deleted in Jira.
        let pay = site.project("PAY").expect("PAY").clone();
        let gone = site.components(&pay)[0].clone();
        assert!(fake.remove_component(&gone.id));
        // Its lead goes too when they lead nothing else.
        let still_leads = |person: usize| {
            fake.site().projects.iter().any(|p| {
                p.lead == Some(person)
                    || fake
                        .site()
                        .components(p)
                        .iter()
                        .any(|c| c.lead == Some(person))
            })
        };
        let mut expected = vec![(
            ChangeOp::Deleted,
            format!("component:default/{}", gone.name),
        )];
        if let Some(lead) = gone.lead.filter(|l| !still_leads(*l)) {
            let name = person_name(&org.people[lead]).expect("name");
            expected.push((ChangeOp::Deleted, format!("user:default/{name}")));
        }
        let r = sync_cloud(store, &fake, JIRA_API_TOKEN).await;
        assert_eq!(
            (r.status, r.counts.entities.deleted as usize),
            (RunStatus::Succeeded, expected.len()),
            "{backend}: {r:?}"
        );
        let mut ops = ops_since(store, &mut seen).await;
        ops.sort();
        expected.sort();
        assert_eq!(ops, expected, "{backend}");

        // The project key changes: the System is renamed (its id is the project id), and its
        // components now say they are part of the renamed System.
        let uid = store
            .resolve_uid("system:default/pay")
            .await
            .expect("resolve")
            .expect("the PAY system");
        assert!(fake.set_project_key("PAY", "PMT"));
        let r = sync_cloud(store, &fake, JIRA_API_TOKEN).await;
        assert_eq!(r.status, RunStatus::Succeeded, "{backend}: {r:?}");
        assert_eq!(
            (r.counts.entities.renamed, r.counts.entities.deleted),
            (1, 0),
            "{backend}"
        );
        let ops = ops_since(store, &mut seen).await;
        assert!(
            ops.contains(&(ChangeOp::Renamed, "system:default/pmt".into())),
            "{backend}: {ops:?}"
        );
        let kept = site.components(&pay)[1].name.clone();
        assert!(
            ops.contains(&(ChangeOp::Updated, format!("component:default/{kept}"))),
            "{backend}: {ops:?}"
        );
        assert_eq!(
            store
                .resolve_uid("system:default/pmt")
                .await
                .expect("resolve"),
            Some(uid.clone()),
            "{backend}: the same entity"
        );
        let history = store
            .list_changes(&ChangeFilter {
                entity_uid: Some(uid),
                ..ChangeFilter::default()
            })
            .await
            .expect("history");
        assert!(
            history
                .iter()
                .any(|c| c.previous_ref.as_deref() == Some("system:default/pay")),
            "{backend}: the rename remembers the old ref"
        );

        // Jira asks us to slow down once: the sync waits and goes on.
        let limited = fake.stats().rate_limited;
        fake.add_fault(
            JiraFault::new(
                "projects",
                JiraFaultAction::RateLimited {
                    retry_after_secs: 1,
                },
            )
            .times(1),
        );
        let r = sync_cloud(store, &fake, JIRA_API_TOKEN).await;
        assert_eq!(r.status, RunStatus::Succeeded, "{backend}: {r:?}");
        assert_eq!(r.counts.entities.changes(), 0, "{backend}");
        assert_eq!(fake.stats().rate_limited, limited + 1, "{backend}");

        // Revoked credentials: the site fails, and a component that did go is not deleted.
        let next = site.components(&pay)[2].clone();
        assert!(fake.remove_component(&next.id));
        let r = sync_cloud(store, &fake, "revoked").await;
        assert_eq!(
            (r.status, r.counts.entities.deleted),
            (RunStatus::Failed, 0),
            "{backend}: {r:?}"
        );
        let status = &r.scopes[0].status;
        assert!(
            matches!(status, ScopeStatus::Failed { reason } if reason.contains("HTTP 401")),
            "{backend}: {status:?}"
        );
        assert!(ops_since(store, &mut seen).await.is_empty(), "{backend}");
        let r = sync_cloud(store, &fake, JIRA_API_TOKEN).await;
        let lead_gone = next.lead.is_some_and(|l| !still_leads(l));
        assert_eq!(
            (r.status, r.counts.entities.deleted),
            (RunStatus::Succeeded, 1 + u64::from(lead_gone)),
            "{backend}"
        );
        ts.cleanup().await;
    }
}

/// The name Jira Cloud's connector gives a person: the email's local part, else the display
/// name.
fn person_name(p: &surveyor_sim::Person) -> Option<String> {
    let local = p.email.as_deref().and_then(|e| e.split('@').next());
    surveyor_model::names::entity_name(local.unwrap_or(&p.name))
}

#[tokio::test]
async fn jira_components_land_on_the_repositories_components() {
    for ts in TestStore::all().await {
        let (store, backend) = (&ts.store, ts.backend);
        let org = Org::generate(&OrgSpec::small());
        let github = GithubFake::start(vec![org.clone()]).await.expect("github");
        let jira = JiraFake::start(&org, JiraFlavor::DataCenter)
            .await
            .expect("jira");
        let dir = tempfile::tempdir().expect("tempdir");
        let toml = format!(
            "orgs = [\"acme\"]\ntoken = \"{FAKE_TOKEN}\"\napi_url = \"{}\"",
            github.url()
        );
        let config: GithubConfig = toml::from_str(&toml).expect("github config");
        let gh = GithubConnector::new("github", config, dir.path()).expect("github connector");
        let toml = format!(
            "url = \"{}\"\nflavor = \"datacenter\"\ntoken = \"{JIRA_PAT}\"",
            jira.url()
        );
        let config: JiraConfig = toml::from_str(&toml).expect("jira config");
        let jc = JiraConnector::new("jira", config).expect("jira connector");
        let options = ReconcileOptions::default();
        let r = run_connector(store, &gh, &options)
            .await
            .expect("github run");
        assert_eq!(r.status, RunStatus::Succeeded, "{backend}: {r:?}");
        let r = run_connector(store, &jc, &options).await.expect("jira run");
        assert_eq!(r.status, RunStatus::Succeeded, "{backend}: {r:?}");

        // Every repository is one Component, described by both sources.
        let site = jira.site();
        for p in &site.projects {
            for c in site.components(p) {
                let key = format!("component:default/{}", c.name);
                let e = store
                    .get_entity(&key)
                    .await
                    .expect("get")
                    .unwrap_or_else(|| panic!("{backend}: {key}"));
                let sources: serde_json::Value =
                    serde_json::from_str(&e.sources).expect("sources JSON");
                let names: Vec<&str> = sources
                    .as_array()
                    .expect("a list")
                    .iter()
                    .filter_map(|s| s["source"].as_str())
                    .collect();
                assert!(
                    names.contains(&"github") && names.contains(&"jira"),
                    "{backend}: {key}: {names:?}"
                );
            }
            // A Data Center lead is named by username, which is the GitHub login here: the
            // System's owner is a User the GitHub sync created.
            if let Some(lead) = p.lead {
                let owner = format!("user:default/{}", org.people[lead].login);
                let system = store
                    .get_entity(&format!("system:default/{}", p.key.to_lowercase()))
                    .await
                    .expect("get")
                    .expect("the system");
                let body: serde_json::Value = serde_json::from_str(&system.body).expect("body");
                assert_eq!(body["spec"]["owner"], owner.as_str(), "{backend}");
                assert!(
                    store.get_entity(&owner).await.expect("get").is_some(),
                    "{backend}: {owner} resolves"
                );
            }
        }
        ts.cleanup().await;
    }
}
