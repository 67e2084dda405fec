//! The gitlab connector against the simulated GitLab, through reconcile into the store: a full
//! sync, a quiet resync that writes nothing, renamed, archived, deleted and transferred projects
//! and a moved member showing up as the right change op, and a failed page that deletes nothing.
//! The fake serves every other repository of the org (the rest would live on GitHub). SQLite
//! always, Postgres in CI.

use std::path::Path;

use surveyor_connector_gitlab::{GitlabConfig, GitlabConnector};
use surveyor_engine::{RunReport, RunStatus};
use surveyor_sim::gitlab::every_other;
use surveyor_sim::{Fault, FaultAction, GITLAB_TOKEN, GitlabFake, Org, OrgSpec};
use surveyor_store::{ChangeFilter, ChangeOp, Store};
use surveyor_tests::{TestStore, change_count, ops_since, sync_once};

fn connector(fake: &GitlabFake, dir: &Path) -> GitlabConnector {
    let toml = format!(
        "groups = [\"acme\"]\ntoken = \"{GITLAB_TOKEN}\"\nurl = \"{}\"\npage_size = 10\nmax_retries = 1\nrequests_per_second = 1000",
        fake.url()
    );
    let config: GitlabConfig = toml::from_str(&toml).expect("config");
    GitlabConnector::new("gitlab", config, dir).expect("connector")
}

/// One sync with a fresh connector, as a new `surveyor sync` process would run it.
async fn sync(store: &Store, fake: &GitlabFake, dir: &Path) -> (RunReport, GitlabConnector) {
    let c = connector(fake, dir);
    let report = sync_once(store, &c).await;
    (report, c)
}

/// A change to the org, and the change op (on which entity) it must produce.
type Step = (&'static str, Box<dyn Fn(&mut Org)>, ChangeOp, String);

/// A served project without a descriptor, so its discovered name and fields are what is stored.
fn plain_repo(org: &Org, skip: usize) -> usize {
    (0..org.repos.len())
        .filter(|i| {
            let r = &org.repos[*i];
            r.active && every_other(r) && !r.files.contains_key("catalog-info.yaml") && !r.archived
        })
        .nth(skip)
        .expect("a plain served repository")
}

#[tokio::test]
async fn a_group_syncs_and_every_change_is_recorded() {
    for ts in TestStore::all().await {
        let store = &ts.store;
        let backend = ts.backend;
        let org = Org::generate(&OrgSpec::small());
        let fake = GitlabFake::start_with(org.clone(), every_other)
            .await
            .expect("fake");
        let dir = tempfile::tempdir().expect("tempdir");

        let (r, c) = sync(store, &fake, dir.path()).await;
        assert_eq!(r.status, RunStatus::Succeeded, "{backend}: {r:?}");
        let projects = org.repos.iter().filter(|r| every_other(r)).count();
        let expected = (projects + org.teams.len() + 1 + org.people.len()) as u64;
        assert_eq!(r.counts.entities.created, expected, "{backend}");
        let full = c.stats();
        eprintln!(
            "{backend}: full sync of {projects} projects, {} groups, {} users: {} REST + {} GraphQL requests",
            org.teams.len() + 1,
            org.people.len(),
            full.rest_requests,
            full.graphql_requests
        );

        // Quiet resync: nothing written, and every REST request answered by a 304.
        let before = store.table_counts().await.expect("counts");
        let (r, c) = sync(store, &fake, dir.path()).await;
        assert_eq!(r.status, RunStatus::Succeeded, "{backend}: {r:?}");
        assert_eq!(r.counts.entities.changes(), 0, "{backend}: {:?}", r.counts);
        assert_eq!(
            store.table_counts().await.expect("counts").changes,
            before.changes,
            "{backend}"
        );
        let stats = c.stats();
        assert_eq!(stats.rest_not_modified, stats.rest_requests, "{backend}");

        // Each mutation, then a sync, then the op it should have produced.
        let renamed = plain_repo(&org, 0);
        let archived = plain_repo(&org, 1);
        let moved = plain_repo(&org, 2);
        let deleted = plain_repo(&org, 3);
        let old_name = org.repos[renamed].name.clone();
        let new_team = (org.repos[moved].owner_team + 1) % org.teams.len();
        let (mover, from) = org
            .teams
            .iter()
            .enumerate()
            .find_map(|(i, t)| t.members.first().map(|m| (*m, i)))
            .expect("a group member");
        let to = (from + 1) % org.teams.len();

        let steps: Vec<Step> = vec![
            (
                "rename",
                Box::new(move |o: &mut Org| o.rename_repo(renamed, "renamed-service")),
                ChangeOp::Renamed,
                "component:default/renamed-service".into(),
            ),
            (
                "archive",
                Box::new(move |o: &mut Org| o.archive_repo(archived)),
                ChangeOp::Updated,
                format!("component:default/{}", org.repos[archived].name),
            ),
            (
                // CODEOWNERS names another team, and the project moves to its group.
                "transfer",
                Box::new(move |o: &mut Org| o.set_owner(moved, new_team)),
                ChangeOp::Updated,
                format!("component:default/{}", org.repos[moved].name),
            ),
            (
                "delete",
                Box::new(move |o: &mut Org| o.delete_repo(deleted)),
                ChangeOp::Deleted,
                format!("component:default/{}", org.repos[deleted].name),
            ),
            (
                "move member",
                Box::new(move |o: &mut Org| o.move_person(mover, from, to)),
                ChangeOp::Updated,
                format!("user:default/{}", org.people[mover].login),
            ),
        ];
        for (what, mutate, op, entity) in steps {
            let mut seen = change_count(store).await;
            fake.with_org(|o| mutate(o));
            let (r, _) = sync(store, &fake, dir.path()).await;
            assert_eq!(r.status, RunStatus::Succeeded, "{backend} {what}: {r:?}");
            let ops = ops_since(store, &mut seen).await;
            assert!(
                ops.contains(&(op, entity.clone())),
                "{backend} {what}: expected {op:?} {entity} in {ops:?}"
            );
        }

        // The transferred project is owned by its new group.
        let owner = store
            .get_entity(&format!("component:default/{}", org.repos[moved].name))
            .await
            .expect("get")
            .expect("present");
        let body: serde_json::Value = serde_json::from_str(&owner.body).expect("json");
        let team = &org.teams[new_team];
        let group = match team.parent {
            None => team.slug.clone(),
            Some(p) => format!("{}-{}", org.teams[p].slug, team.slug),
        };
        assert_eq!(
            body["spec"]["owner"],
            format!("group:default/{group}"),
            "{backend}"
        );
        assert!(
            body["metadata"]["annotations"]["gitlab.com/project-slug"]
                .as_str()
                .is_some_and(|s| s.contains(&format!("/{}/", team.slug))),
            "{backend}: {}",
            body["metadata"]["annotations"]
        );
        // The rename kept its history.
        let uid = store
            .resolve_uid("component:default/renamed-service")
            .await
            .expect("resolve");
        let history = store
            .list_changes(&ChangeFilter {
                entity_uid: uid,
                ..ChangeFilter::default()
            })
            .await
            .expect("history");
        assert!(
            history.iter().any(|c| c.entity_ref.ends_with(&old_name)),
            "{backend}: history follows the rename back to {old_name}"
        );

        // A failed page: the group is partial and deletes nothing, even what really went away.
        let gone = plain_repo(&fake.org(), 4);
        fake.with_org(|o| o.delete_repo(gone));
        fake.add_fault(Fault::new("rest:projects:acme", FaultAction::Status(500)).skip(1));
        let mut seen = change_count(store).await;
        let (r, _) = sync(store, &fake, dir.path()).await;
        assert_eq!(r.status, RunStatus::Partial, "{backend}: {r:?}");
        assert_eq!(r.counts.entities.deleted, 0, "{backend}");
        assert!(ops_since(store, &mut seen).await.is_empty(), "{backend}");
        fake.clear_faults();
        let (r, _) = sync(store, &fake, dir.path()).await;
        assert_eq!(
            (r.status, r.counts.entities.deleted),
            (RunStatus::Succeeded, 1),
            "{backend}: {r:?}"
        );
        let tombstone = store
            .get_entity(&format!("component:default/{}", org.repos[gone].name))
            .await
            .expect("get")
            .expect("a tombstone");
        assert!(tombstone.deleted_at.is_some(), "{backend}");
        ts.cleanup().await;
    }
}
