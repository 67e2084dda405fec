use super::*;
use crate::gitlab::every_other;
use crate::org::OrgSpec;
use crate::pagerduty::has_service;
use crate::plants::Plants;

/// The small org's world as the audit benchmark makes it: faults planted, the Jira site made,
/// then the org's history; every other fake renders the org as it ends up.
fn world(plant: bool) -> (Org, JiraSite, Account, Cluster) {
    let mut org = Org::generate(&OrgSpec::small());
    if plant {
        org.plant_audit_faults();
    }
    let mut site = JiraSite::from_org(&org);
    if plant {
        org.plant_history();
    }
    site.org = org.clone();
    let account = Account::from_org(&org);
    let cluster = Cluster::from_org(&org, "prod");
    (org, site, account, cluster)
}

fn truth_of(w: &(Org, JiraSite, Account, Cluster)) -> Truth {
    planted(&Views {
        org: &w.0,
        jira: &w.1,
        pagerduty: &w.2,
        cluster: &w.3,
        on_gitlab: &every_other,
    })
}

fn component(name: &str) -> String {
    format!("component:default/{name}")
}

fn set(refs: impl IntoIterator<Item = String>) -> BTreeSet<String> {
    refs.into_iter().collect()
}

fn planted_set(truth: &Truth, rule: &str) -> BTreeSet<String> {
    set(truth.planted(rule).into_iter().map(str::to_string))
}

#[test]
fn the_generator_plants_nothing_unless_asked() {
    let mut org = Org::generate(&OrgSpec::small());
    assert_eq!(org.plants, Plants::default());
    let before = org.clone();
    let what = org.plant_audit_faults();
    let p = &org.plants;
    assert!(
        !p.emptied_teams.is_empty() && !p.pagerduty_team.is_empty(),
        "{what:?}"
    );
    assert!(
        !p.workload_owner.is_empty() && !p.person_owner.is_empty(),
        "{what:?}"
    );
    assert!(
        !p.declared_extra.is_empty() && !p.archived.is_empty(),
        "{what:?}"
    );
    assert_eq!(org.repos.len(), before.repos.len());
    let history = org.plant_history();
    assert!(
        !org.plants.departed.is_empty() && !org.plants.moved.is_empty(),
        "{history:?}"
    );
    // Every emptied team is a leaf, and empty.
    for t in &org.plants.emptied_teams {
        assert!(org.teams[*t].members.is_empty());
        assert!(!org.teams.iter().any(|x| x.parent == Some(*t)));
    }

    // Without plants the small org has none of these.
    let quiet = truth_of(&world(false));
    for rule in [
        "owner-group-empty",
        "owner-user-removed",
        "conflicting-owners",
        "declared-unseen",
        "owner-unresolved",
    ] {
        assert!(
            quiet.planted(rule).is_empty(),
            "{rule}: {:?}",
            quiet.rules.get(rule)
        );
    }
}

#[test]
fn refs_are_as_the_catalog_shows_them() {
    let truth = truth_of(&world(true));
    for rule in truth.rules.keys() {
        assert!(RULES.contains(rule), "{rule}");
    }
    for (rule, refs) in &truth.rules {
        for r in refs.keys() {
            let (kind, rest) = r.split_once(':').expect("kind:namespace/name");
            let (ns, name) = rest.split_once('/').expect("namespace/name");
            assert!(
                matches!(kind, "component" | "resource" | "system" | "domain") && ns == "default",
                "{rule}: {r}"
            );
            assert_eq!(entity_name(name).as_deref(), Some(name), "{rule}: {r}");
        }
    }
}

#[test]
fn what_only_one_fake_has_is_unclaimed() {
    let w = world(true);
    let (org, _, account, cluster) = &w;
    let truth = truth_of(&w);
    let repos: BTreeSet<String> = org
        .live_repos()
        .filter_map(|r| entity_name(&r.name))
        .collect();
    // PagerDuty services no repository is called like.
    let services = set(account
        .services
        .values()
        .filter_map(|s| entity_name(s["name"].as_str()?))
        .filter(|n| !repos.contains(n))
        .map(|n| component(&n)));
    assert!(!services.is_empty());
    assert_eq!(planted_set(&truth, "service-unclaimed"), services);
    assert_eq!(planted_set(&truth, "component-without-repo"), services);
    // Workloads outside the system namespaces no repository is called like.
    let workloads = set(["deployments", "statefulsets", "daemonsets", "cronjobs"]
        .iter()
        .flat_map(|r| cluster.names(r))
        .filter(|(ns, name)| !ns.starts_with("kube-") && !repos.contains(name))
        .map(|(ns, name)| format!("resource:default/{name}.{ns}.prod")));
    assert!(!workloads.is_empty());
    assert_eq!(planted_set(&truth, "workload-without-component"), workloads);
    // Components only a descriptor declares.
    let extra = set(org.plants.declared_extra.values().map(|n| component(n)));
    assert_eq!(planted_set(&truth, "declared-unseen"), extra);
}

#[test]
fn planted_owners_are_flagged() {
    let w = world(true);
    let (org, site, _, _) = &w;
    let truth = truth_of(&w);
    let p = &org.plants;
    let has = |rule: &str, r: &str| truth.planted(rule).contains(r);

    let mut empty_owned = 0;
    for (i, repo) in org.repos.iter().enumerate() {
        if p.emptied_teams.contains(&repo.owner_team) && !p.person_owner.contains_key(&i) {
            assert!(
                has("owner-group-empty", &component(&repo.name)),
                "{}",
                repo.name
            );
            empty_owned += 1;
        }
    }
    assert!(empty_owned > 0, "the emptied team owns something");
    for (repo, person) in &p.person_owner {
        let c = component(&org.repos[*repo].name);
        if p.departed.contains(person) {
            assert!(has("owner-user-removed", &c), "{c}");
        } else {
            assert!(
                !has("owner-user-removed", &c) && !has("owner-deactivated", &c),
                "{c}"
            );
        }
    }
    for (repo, owner) in &p.workload_owner {
        let r = &org.repos[*repo];
        let ns = r.system.trim_end_matches("-system");
        let workload = format!("resource:default/{}.{ns}.prod", r.name);
        assert!(
            has("owner-unresolved", &workload),
            "{workload} labelled {owner}"
        );
    }
    // Two teams: CODEOWNERS' and PagerDuty's.
    for repo in p.pagerduty_team.keys() {
        let c = component(&org.repos[*repo].name);
        assert!(
            has("conflicting-owners", &c) && has("disagreement", &c),
            "{c}"
        );
    }
    // A Jira lead who moved out of the owner team.
    for (repo, lead, from, _) in &p.moved {
        assert_eq!(org.repos[*repo].owner_team, *from);
        assert!(!org.teams[*from].members.contains(lead));
        let c = component(&org.repos[*repo].name);
        assert!(has("conflicting-owners", &c), "{c}");
    }
    // Archived, while PagerDuty still runs the service.
    for repo in &p.archived {
        assert!(has_service(*repo));
        assert!(has("disagreement", &component(&org.repos[*repo].name)));
    }
    // Projects: no lead is no owner, a deactivated or departed lead is a deactivated owner.
    // Each project's system goes by the operator's name for it (`billing-system`).
    for project in &site.projects {
        let system = format!("system:default/{}-system", project.area);
        match project.lead {
            None => assert!(has("no-owner", &system), "{system}"),
            Some(l) if !site.user_active(l) => {
                assert!(has("owner-deactivated", &system), "{system}");
                assert!(has("weak-owner", &system), "{system}");
            }
            Some(_) => assert!(has("weak-owner", &system), "{system}"),
        }
    }
    // Every owner conflict is a disagreement too.
    let conflicts = planted_set(&truth, "conflicting-owners");
    assert!(conflicts.is_subset(&planted_set(&truth, "disagreement")));
}

#[test]
fn services_without_anyone_on_call_are_flagged() {
    let w = world(true);
    let (org, _, account, _) = &w;
    let truth = truth_of(&w);
    let no_on_call = planted_set(&truth, "no-on-call");
    for (i, repo) in org.repos.iter().enumerate().filter(|(_, r)| r.active) {
        let c = component(&repo.name);
        if !has_service(i) {
            assert!(
                no_on_call.contains(&c),
                "{c}: PagerDuty has no service for it"
            );
        }
    }
    // A service whose policy has someone at level 1 is covered.
    let covered: Vec<String> = account
        .services
        .values()
        .filter(|s| {
            s["escalation_policy"]["id"]
                .as_str()
                .is_some_and(|p| account.on_call_at_level_one(p))
        })
        .filter_map(|s| entity_name(s["name"].as_str()?))
        .collect();
    assert!(!covered.is_empty());
    for name in covered {
        assert!(!no_on_call.contains(&component(&name)), "{name}");
    }
    // Libraries declared in descriptors are not services.
    for name in org.plants.declared_extra.values() {
        assert!(!no_on_call.contains(&component(name)));
    }
}
