//! One org seen by GitHub, Kubernetes, PagerDuty and Jira, synced into one catalog: a service
//! present in all of them is one entity with per-field provenance; an owner the sources dispute
//! is kept from the first-configured source and reported; each audit rule fires where it should
//! and stays quiet where it should not. SQLite always, Postgres in CI.

use std::collections::BTreeMap;
use std::path::Path;

use serde_json::Value;
use surveyor_connector_github::{GithubConfig, GithubConnector};
use surveyor_connector_jira::{JiraConfig, JiraConnector};
use surveyor_connector_kubernetes::{KubernetesConfig, KubernetesConnector};
use surveyor_connector_pagerduty::{PagerDutyConfig, PagerDutyConnector};
use surveyor_engine::{ReconcileOptions, RunStatus, run_connector};
use surveyor_model::Connector;
use surveyor_sim::jira::{JIRA_API_TOKEN, JIRA_EMAIL};
use surveyor_sim::{
    Account, Cluster, FAKE_TOKEN, GithubFake, JiraFake, JiraFlavor, KubeFake, Org, OrgSpec,
    PD_TOKEN, PagerDutyFake,
};
use surveyor_store::Store;
use surveyor_tests::TestStore;

struct Fakes {
    github: GithubFake,
    kube: KubeFake,
    pagerduty: PagerDutyFake,
    jira: JiraFake,
}

fn connectors(f: &Fakes, dir: &Path) -> Vec<Box<dyn Connector>> {
    let gh: GithubConfig = toml::from_str(&format!(
        "orgs = [\"acme\"]\ntoken = \"{FAKE_TOKEN}\"\napi_url = \"{}\"",
        f.github.url()
    ))
    .expect("github");
    std::fs::write(
        dir.join("kubeconfig"),
        KubeFake::kubeconfig(&[("prod", f.kube.url())]),
    )
    .expect("kubeconfig");
    let k8s: KubernetesConfig =
        toml::from_str("contexts = [\"prod\"]\nkubeconfig = \"kubeconfig\"").expect("k8s");
    let pd: PagerDutyConfig = toml::from_str(&format!(
        "subdomain = \"acme\"\ntoken = \"{PD_TOKEN}\"\napi_url = \"{}\"\nrequests_per_second = 1000",
        f.pagerduty.url()
    ))
    .expect("pagerduty");
    let jira: JiraConfig = toml::from_str(&format!(
        "url = \"{}\"\nemail = \"{JIRA_EMAIL}\"\napi_token = \"{JIRA_API_TOKEN}\"\nrequests_per_second = 1000",
        f.jira.url()
    ))
    .expect("jira");
    vec![
        Box::new(GithubConnector::new("github", gh, dir).expect("github")),
        Box::new(KubernetesConnector::new("k8s", k8s, dir).expect("k8s")),
        Box::new(PagerDutyConnector::new("pagerduty", pd).expect("pagerduty")),
        Box::new(JiraConnector::new("jira", jira).expect("jira")),
    ]
}

/// Syncs every source, GitHub first in priority (as the configuration would list it).
async fn sync_all(store: &Store, fakes: &Fakes, dir: &Path) {
    let priority: BTreeMap<String, usize> = ["github", "k8s", "pagerduty", "jira"]
        .iter()
        .enumerate()
        .map(|(i, s)| (s.to_string(), i))
        .collect();
    let options = ReconcileOptions {
        source_priority: priority,
        ..ReconcileOptions::default()
    };
    for c in connectors(fakes, dir) {
        let r = run_connector(store, c.as_ref(), &options)
            .await
            .expect("run");
        assert_eq!(r.status, RunStatus::Succeeded, "{}: {r:?}", c.id());
    }
}

fn kinds() -> surveyor_audit::Sources {
    surveyor_audit::Sources {
        kinds: [
            ("github", "github"),
            ("k8s", "kubernetes"),
            ("pagerduty", "pagerduty"),
            ("jira", "jira"),
        ]
        .iter()
        .map(|(a, b)| (a.to_string(), b.to_string()))
        .collect(),
        cosmetic: false,
    }
}

#[tokio::test]
async fn one_service_from_four_sources_is_one_entity_and_the_audit_finds_the_gaps() {
    for ts in TestStore::all().await {
        let (store, backend) = (&ts.store, ts.backend);
        let mut org = Org::generate(&OrgSpec::small());
        // A team whose people all left for another: whatever it owns has an empty owner.
        let emptied = 2;
        let members = org.teams[emptied].members.clone();
        for p in members {
            org.move_person(p, emptied, (emptied + 1) % org.teams.len());
        }
        let fakes = Fakes {
            github: GithubFake::start(vec![org.clone()]).await.expect("github"),
            kube: KubeFake::start(Cluster::from_org(&org, "prod"))
                .await
                .expect("kube"),
            pagerduty: PagerDutyFake::start(Account::from_org(&org))
                .await
                .expect("pd"),
            jira: JiraFake::start(&org, JiraFlavor::Cloud)
                .await
                .expect("jira"),
        };
        let dir = tempfile::tempdir().expect("dir");
        sync_all(store, &fakes, dir.path()).await;

        // A repository that PagerDuty and Jira know too, without a descriptor of its own.
        let repo = org
            .repos
            .iter()
            .enumerate()
            .find(|(i, r)| i % 3 != 0 && i % 2 == 0 && !r.files.contains_key("catalog-info.yaml"))
            .map(|(_, r)| r.clone())
            .expect("a repo with a PagerDuty service of its own team");
        let key = format!("component:default/{}", repo.name);
        let row = store.get_entity(&key).await.expect("get").expect("merged");
        let body: Value = serde_json::from_str(&row.body).expect("body");
        let claims: Vec<Value> = serde_json::from_str(&row.sources).expect("sources");
        let sources: Vec<&str> = claims.iter().filter_map(|c| c["source"].as_str()).collect();
        for s in ["github", "pagerduty", "jira"] {
            assert!(sources.contains(&s), "{backend}: {key} from {sources:?}");
        }
        assert!(body["metadata"]["annotations"]["github.com/project-slug"].is_string());
        assert!(body["metadata"]["annotations"]["pagerduty.com/service-id"].is_string());
        assert!(
            body["spec"]["onCall"].is_object(),
            "{backend}: PagerDuty's field is kept"
        );
        let pd = claims
            .iter()
            .find(|c| c["source"] == "pagerduty")
            .expect("pd claim");
        assert!(
            pd["fields"]
                .as_array()
                .is_some_and(|f| f.iter().any(|p| p == "/spec/onCall/covered")),
            "{backend}: provenance names PagerDuty for on-call: {pd}"
        );
        assert_eq!(claims.iter().filter(|c| c["winner"] == true).count(), 1);

        // PagerDuty now puts the service under another team: GitHub's owner stays, the
        // dispute is recorded and reported.
        let other_team = (repo.owner_team + 1) % org.teams.len();
        let other_slug = org.teams[other_team].slug.clone();
        fakes.pagerduty.with_account(|a| {
            let team_id = a
                .teams
                .iter()
                .find(|(_, t)| surveyor_model::names::entity_name(t["name"].as_str().unwrap_or_default()).as_deref() == Some(other_slug.as_str()))
                .map(|(id, t)| (id.clone(), t["name"].clone()))
                .expect("the other team");
            let id = a
                .service_id(&repo.name.split('-').map(|w| {
                    let mut c = w.chars();
                    c.next().map(|f| f.to_uppercase().collect::<String>() + c.as_str()).unwrap_or_default()
                }).collect::<Vec<_>>().join(" "))
                .expect("the repo's service");
            a.services.get_mut(&id).expect("service")["teams"] =
                serde_json::json!([{"id": team_id.0, "type": "team_reference", "summary": team_id.1}]);
        });
        sync_all(store, &fakes, dir.path()).await;
        let row = store.get_entity(&key).await.expect("get").expect("merged");
        let body: Value = serde_json::from_str(&row.body).expect("body");
        assert_eq!(
            body["spec"]["owner"],
            format!("group:default/{}", org.teams[repo.owner_team].slug),
            "{backend}: the first-configured source's owner is kept"
        );
        let ownership = surveyor_audit::ownership(store, &kinds())
            .await
            .expect("audit");
        let fired = |rule: &str, entity: &str| {
            ownership
                .iter()
                .any(|f| f.rule == rule && f.entity.eq_ignore_ascii_case(entity))
        };
        assert!(
            fired("conflicting-owners", &key),
            "{backend}: the dispute is reported"
        );
        let dispute = ownership
            .iter()
            .find(|f| f.rule == "conflicting-owners" && f.entity.eq_ignore_ascii_case(&key))
            .expect("dispute");
        assert!(
            dispute
                .evidence
                .iter()
                .any(|e| e.source == "pagerduty" && e.said.contains(&other_slug)),
            "{backend}: {dispute:?}"
        );
        // A Jira lead who belongs to the team that owns the component is no conflict: the team
        // owns it, the person is kept as its lead.
        let site = fakes.jira.site();
        let mut consistent = 0;
        for (i, r) in org.repos.iter().enumerate() {
            let Some(Some(lead)) = site.component_leads.get(&i) else {
                continue;
            };
            let member = org.teams[r.owner_team].members.contains(lead);
            let entity = format!("component:default/{}", r.name);
            if !r.active || !member || entity == key || !site.user_active(*lead) {
                continue;
            }
            consistent += 1;
            assert!(
                !fired("conflicting-owners", &entity),
                "{backend}: {entity}'s Jira lead is a member of its team"
            );
            let row = store
                .get_entity(&entity)
                .await
                .expect("get")
                .expect("entity");
            let body: Value = serde_json::from_str(&row.body).expect("body");
            assert_eq!(
                body["spec"]["owner"],
                format!("group:default/{}", org.teams[r.owner_team].slug),
                "{backend}: {entity}"
            );
            assert!(
                body["metadata"]["annotations"]["surveyor.dev/lead"]
                    .as_str()
                    .is_some_and(|l| l.starts_with("user:")),
                "{backend}: {entity} keeps its lead"
            );
        }
        assert!(
            consistent > 3,
            "{backend}: {consistent} components to look at"
        );
        // A lead outside the team and its sub-teams (with teams the catalog knows) is a
        // conflict.
        let under = |team: usize, top: usize| {
            let mut at = Some(team);
            for _ in 0..org.teams.len() {
                match at {
                    Some(t) if t == top => return true,
                    Some(t) => at = org.teams[t].parent,
                    None => break,
                }
            }
            false
        };
        let (outside_repo, outsider) = org
            .repos
            .iter()
            .enumerate()
            .filter(|(_, r)| r.active && format!("component:default/{}", r.name) != key)
            .filter(|(i, _)| site.component_leads.contains_key(i))
            .find_map(|(i, r)| {
                let teams_of = |p: usize| -> Vec<usize> {
                    (0..org.teams.len())
                        .filter(|&t| org.teams[t].active && org.teams[t].members.contains(&p))
                        .collect()
                };
                let p = (0..org.people.len()).find(|&p| {
                    org.people[p].active
                        && org.people[p].email.is_some()
                        && site.user_active(p)
                        && !teams_of(p).is_empty()
                        && !teams_of(p).iter().any(|&t| under(t, r.owner_team))
                })?;
                Some((i, p))
            })
            .expect("a repository and a person of another team");
        fakes.jira.with_site(|s| {
            s.component_leads.insert(outside_repo, Some(outsider));
        });
        sync_all(store, &fakes, dir.path()).await;
        let ownership = surveyor_audit::ownership(store, &kinds())
            .await
            .expect("audit");
        let outside = format!("component:default/{}", org.repos[outside_repo].name);
        assert!(
            ownership.iter().any(|f| f.rule == "conflicting-owners"
                && f.entity.eq_ignore_ascii_case(&outside)
                && f.evidence.iter().any(|e| e.source == "jira")),
            "{backend}: {outside}'s new Jira lead is in another team"
        );
        let fired = |rule: &str, entity: &str| {
            ownership
                .iter()
                .any(|f| f.rule == rule && f.entity.eq_ignore_ascii_case(entity))
        };
        // Each rule fires somewhere and stays quiet somewhere else.
        let rules_fired: std::collections::BTreeSet<&str> =
            ownership.iter().map(|f| f.rule).collect();
        for rule in [
            "no-owner",
            "owner-group-empty",
            "no-on-call",
            "conflicting-owners",
        ] {
            assert!(
                rules_fired.contains(rule),
                "{backend}: {rule} fires: {rules_fired:?}"
            );
        }
        assert!(fired(
            "no-owner",
            "resource:default/legacy-batch-0.default.prod"
        ));
        assert!(
            !fired("no-owner", &key),
            "{backend}: owned components are not reported"
        );
        let emptied_owner = format!("group:default/{}", org.teams[emptied].slug);
        assert!(
            ownership.iter().any(|f| f.rule == "owner-group-empty"
                && f.owner.as_deref() == Some(emptied_owner.as_str())),
            "{backend}: the emptied team's components"
        );
        assert!(
            !ownership.iter().any(|f| f.rule == "owner-group-empty"
                && f.owner.as_deref() != Some(emptied_owner.as_str())),
            "{backend}: only the emptied team is empty"
        );
        let drift = surveyor_audit::drift(store, &kinds()).await.expect("drift");
        assert!(
            drift
                .iter()
                .any(|f| f.rule == "disagreement" && f.entity.eq_ignore_ascii_case(&key)),
            "{backend}: drift shows the disagreement"
        );
        // Other titles and descriptions are cosmetic: reported only when asked for.
        assert!(!drift.iter().any(|f| f.rule == "cosmetic-difference"));
        let cosmetic = surveyor_audit::drift(
            store,
            &surveyor_audit::Sources {
                cosmetic: true,
                ..kinds()
            },
        )
        .await
        .expect("drift");
        assert!(
            cosmetic
                .iter()
                .any(|f| f.rule == "cosmetic-difference"
                    && f.severity == surveyor_audit::Severity::Low),
            "{backend}: cosmetic differences on request"
        );
        assert!(
            drift.iter().any(|f| f.rule == "workload-without-component"),
            "{backend}: the legacy batches belong to nothing"
        );
        assert!(
            drift
                .iter()
                .any(|f| f.rule == "service-unclaimed" && f.entity.ends_with("status-page")),
            "{backend}: a PagerDuty service nothing else knows"
        );
        ts.cleanup().await;
    }
}

/// Identity beyond names on the simulated org: a repository's descriptor that claims a
/// PagerDuty service by id takes it in, whatever PagerDuty calls it; a person GitHub knows by
/// login and PagerDuty by address is one user (their verified email).
#[tokio::test]
async fn a_descriptor_claims_its_pagerduty_service_and_people_meet_by_email() {
    for ts in TestStore::all().await {
        let (store, backend) = (&ts.store, ts.backend);
        let org = Org::generate(&OrgSpec::small());
        let account = Account::from_org(&org);
        // A repository with a PagerDuty service of its own (named after it).
        let (index, service_id) = org
            .repos
            .iter()
            .enumerate()
            .filter(|(_, r)| r.active && !r.files.contains_key("catalog-info.yaml"))
            .find_map(|(i, r)| {
                let title: Vec<String> = r
                    .name
                    .split('-')
                    .map(|w| {
                        let mut c = w.chars();
                        c.next()
                            .map(|f| f.to_uppercase().collect::<String>() + c.as_str())
                            .unwrap_or_default()
                    })
                    .collect();
                account.service_id(&title.join(" ")).map(|id| (i, id))
            })
            .expect("a repository with a service");
        let repo = org.repos[index].clone();
        let github = GithubFake::start(vec![org.clone()]).await.expect("github");
        github.with_org("acme", |o| {
            o.repos[index].files.insert(
                "catalog-info.yaml".into(),
                format!(
                    "apiVersion: backstage.io/v1alpha1\nkind: Component\nmetadata:\n  name: {}\n  annotations:\n    pagerduty.com/service-id: {service_id}\nspec:\n  type: service\n  lifecycle: production\n  owner: group:default/{}\n",
                    repo.name, o.teams[repo.owner_team].slug
                ),
            );
            o.generation += 1;
        });
        let pagerduty = PagerDutyFake::start(account).await.expect("pd");
        // PagerDuty calls it something else entirely.
        pagerduty.with_account(|a| {
            let s = a.services.get_mut(&service_id).expect("service");
            s["name"] = serde_json::json!("Checkout Pager (prod)");
            s["summary"] = serde_json::json!("Checkout Pager (prod)");
        });
        let dir = tempfile::tempdir().expect("dir");
        let gh: GithubConfig = toml::from_str(&format!(
            "orgs = [\"acme\"]\ntoken = \"{FAKE_TOKEN}\"\napi_url = \"{}\"",
            github.url()
        ))
        .expect("github");
        let pd: PagerDutyConfig = toml::from_str(&format!(
            "subdomain = \"acme\"\ntoken = \"{PD_TOKEN}\"\napi_url = \"{}\"\nrequests_per_second = 1000",
            pagerduty.url()
        ))
        .expect("pagerduty");
        let options = ReconcileOptions {
            source_priority: [("github".to_string(), 0), ("pagerduty".to_string(), 1)].into(),
            ..ReconcileOptions::default()
        };
        // PagerDuty first, so the join happens when the declaration arrives.
        let connectors: Vec<Box<dyn Connector>> = vec![
            Box::new(PagerDutyConnector::new("pagerduty", pd).expect("pagerduty")),
            Box::new(GithubConnector::new("github", gh, dir.path()).expect("github")),
        ];
        for c in &connectors {
            let r = run_connector(store, c.as_ref(), &options)
                .await
                .expect("run");
            assert_eq!(r.status, RunStatus::Succeeded, "{}: {r:?}", c.id());
        }
        let key = format!("component:default/{}", repo.name);
        let row = store.get_entity(&key).await.expect("get").expect("merged");
        let claims: Vec<Value> = serde_json::from_str(&row.sources).expect("sources");
        let sources: Vec<&str> = claims.iter().filter_map(|c| c["source"].as_str()).collect();
        assert!(
            sources.contains(&"github") && sources.contains(&"pagerduty"),
            "{backend}: {key} from {sources:?}"
        );
        let body: Value = serde_json::from_str(&row.body).expect("body");
        assert_eq!(
            body["metadata"]["annotations"]["pagerduty.com/service-id"],
            service_id.as_str()
        );
        let stray = store
            .get_entity("component:default/checkout-pager-prod")
            .await
            .expect("get");
        assert!(
            stray.is_none_or(|r| r.deleted_at.is_some()),
            "{backend}: PagerDuty's name is no entity of its own"
        );

        // People: GitHub's login and PagerDuty's address name one user.
        let person = org
            .people
            .iter()
            .find(|p| p.active && p.email.is_some())
            .expect("a person with a public email");
        let user = store
            .get_entity(&format!("user:default/{}", person.login))
            .await
            .expect("get")
            .expect("the GitHub user");
        let claims: Vec<Value> = serde_json::from_str(&user.sources).expect("sources");
        assert!(
            claims.iter().any(|c| c["source"] == "pagerduty"),
            "{backend}: {} met PagerDuty's user by email: {claims:?}",
            person.login
        );
        let local = person
            .email
            .as_deref()
            .and_then(|e| e.split('@').next())
            .unwrap_or_default();
        let pd_named = store
            .get_entity(&format!("user:default/{local}"))
            .await
            .expect("get");
        assert!(
            pd_named.is_none_or(|r| r.deleted_at.is_some()),
            "{backend}: no second user {local}"
        );
        ts.cleanup().await;
    }
}
