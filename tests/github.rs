//! The github connector against the simulated GitHub, through reconcile into the store: a full
//! sync, a quiet resync that writes nothing, each kind of change in the org showing up as the
//! right change op, and a failed page that deletes nothing. SQLite always, Postgres in CI.

use std::path::Path;

use surveyor_connector_github::{GithubConfig, GithubConnector};
use surveyor_engine::{RunReport, RunStatus};
use surveyor_sim::{FAKE_TOKEN, Fault, FaultAction, GithubFake, Org, OrgSpec};
use surveyor_store::{ChangeFilter, ChangeOp, EntityFilter, Store};
use surveyor_tests::{TestStore, change_count, ops_since, sync_once};

fn connector(fake: &GithubFake, dir: &Path) -> GithubConnector {
    let toml = format!(
        "orgs = [\"acme\"]\ntoken = \"{FAKE_TOKEN}\"\napi_url = \"{}\"\npage_size = 10\nmax_retries = 1",
        fake.url()
    );
    let config: GithubConfig = toml::from_str(&toml).expect("config");
    GithubConnector::new("github", config, dir).expect("connector")
}

/// One sync with a fresh connector, as a new `surveyor sync` process would run it.
async fn sync(store: &Store, fake: &GithubFake, dir: &Path) -> (RunReport, GithubConnector) {
    let c = connector(fake, dir);
    let report = sync_once(store, &c).await;
    (report, c)
}

/// A change to the org, and the change op (on which entity) it must produce.
type Step = (&'static str, Box<dyn Fn(&mut Org)>, ChangeOp, String);

/// A repository without a descriptor, so its discovered name and fields are what is stored.
fn plain_repo(org: &Org, skip: usize) -> usize {
    (0..org.repos.len())
        .filter(|i| {
            !org.repos[*i].files.contains_key("catalog-info.yaml") && !org.repos[*i].archived
        })
        .nth(skip)
        .expect("a plain repository")
}

#[tokio::test]
async fn an_org_syncs_and_every_change_is_recorded() {
    for ts in TestStore::all().await {
        let store = &ts.store;
        let backend = ts.backend;
        let org = Org::generate(&OrgSpec::small());
        let fake = GithubFake::start(vec![org.clone()]).await.expect("fake");
        let dir = tempfile::tempdir().expect("tempdir");

        let (r, _) = sync(store, &fake, dir.path()).await;
        assert_eq!(r.status, RunStatus::Succeeded, "{backend}: {r:?}");
        let expected = (org.repos.len() + org.teams.len() + org.people.len()) as u64;
        assert_eq!(r.counts.entities.created, expected, "{backend}");

        // Quiet resync: nothing written, and every REST request answered by a 304.
        let before = store.table_counts().await.expect("counts");
        let (r, c) = sync(store, &fake, dir.path()).await;
        assert_eq!(r.counts.entities.changes(), 0, "{backend}: {:?}", r.counts);
        assert_eq!(
            store.table_counts().await.expect("counts").changes,
            before.changes
        );
        let stats = c.stats();
        assert_eq!(stats.rest_not_modified, stats.rest_requests, "{backend}");

        // Who depends on a package answers from the synced entities.
        let users_of_react = store
            .list_entities(&EntityFilter {
                depends_on: Some(surveyor_store::PackageFilter {
                    ecosystem: Some("npm".into()),
                    package: "react".into(),
                }),
                ..EntityFilter::default()
            })
            .await
            .expect("query");
        let expected_react = org
            .repos
            .iter()
            .filter(|r| {
                r.files
                    .get("package.json")
                    .is_some_and(|t| t.contains("\"react\""))
            })
            .count();
        assert_eq!(users_of_react.len(), expected_react, "{backend}");
        assert!(expected_react > 0);

        // Each mutation, then a sync, then the op it should have produced.
        let renamed = plain_repo(&org, 0);
        let archived = plain_repo(&org, 1);
        let reowned = plain_repo(&org, 2);
        let deleted = plain_repo(&org, 3);
        let old_name = org.repos[renamed].name.clone();
        let new_team = (org.repos[reowned].owner_team + 1) % org.teams.len();
        let (mover, from) = org
            .teams
            .iter()
            .enumerate()
            .find_map(|(i, t)| t.members.first().map(|m| (*m, i)))
            .expect("a team member");
        let to = (from + 1) % org.teams.len();
        let leaver = org.people.len() - 1;
        let disbanded = org.teams.len() - 1;

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
                "codeowners",
                Box::new(move |o: &mut Org| o.set_owner(reowned, new_team)),
                ChangeOp::Updated,
                format!("component:default/{}", org.repos[reowned].name),
            ),
            (
                "delete",
                Box::new(move |o: &mut Org| o.delete_repo(deleted)),
                ChangeOp::Deleted,
                format!("component:default/{}", org.repos[deleted].name),
            ),
            (
                "move person",
                Box::new(move |o: &mut Org| o.move_person(mover, from, to)),
                ChangeOp::Updated,
                format!("user:default/{}", org.people[mover].login),
            ),
            (
                "person leaves",
                Box::new(move |o: &mut Org| o.remove_person(leaver)),
                ChangeOp::Deleted,
                format!("user:default/{}", org.people[leaver].login),
            ),
            (
                "team disbanded",
                Box::new(move |o: &mut Org| o.disband_team(disbanded)),
                ChangeOp::Deleted,
                format!("group:default/{}", org.teams[disbanded].slug),
            ),
        ];
        for (what, mutate, op, entity) in steps {
            let mut seen = change_count(store).await;
            fake.with_org("acme", |o| mutate(o));
            let (r, _) = sync(store, &fake, dir.path()).await;
            assert_eq!(r.status, RunStatus::Succeeded, "{backend} {what}: {r:?}");
            let ops = ops_since(store, &mut seen).await;
            assert!(
                ops.contains(&(op, entity.clone())),
                "{backend} {what}: expected {op:?} {entity} in {ops:?}"
            );
        }
        let owner = store
            .get_entity(&format!("component:default/{}", org.repos[reowned].name))
            .await
            .expect("get")
            .expect("present");
        let body: serde_json::Value = serde_json::from_str(&owner.body).expect("json");
        assert_eq!(
            body["spec"]["owner"],
            format!("group:default/{}", org.teams[new_team].slug),
            "{backend}"
        );
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

        // A failed page: the org is partial and deletes nothing, even what really went away.
        let gone = plain_repo(&fake.org("acme").expect("org"), 4);
        fake.with_org("acme", |o| o.delete_repo(gone));
        fake.add_fault(Fault::new("graphql:repositories", FaultAction::Status(500)).skip(1));
        let mut seen = change_count(store).await;
        let (r, _) = sync(store, &fake, dir.path()).await;
        assert_eq!(r.status, RunStatus::Partial, "{backend}");
        assert_eq!(r.counts.entities.deleted, 0, "{backend}");
        assert!(ops_since(store, &mut seen).await.is_empty(), "{backend}");
        fake.clear_faults();
        let (r, _) = sync(store, &fake, dir.path()).await;
        assert_eq!(
            (r.status, r.counts.entities.deleted),
            (RunStatus::Succeeded, 1),
            "{backend}"
        );
        ts.cleanup().await;
    }
}
