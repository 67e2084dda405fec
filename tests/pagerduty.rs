//! The pagerduty connector against the fake PagerDuty, through reconcile into the store: full
//! sync, a quiet resync, a service removed, a team renamed, 429s, a refused token. SQLite
//! always, Postgres in CI.

use surveyor_connector_pagerduty::{PagerDutyConfig, PagerDutyConnector};
use surveyor_engine::{RunReport, RunStatus};
use surveyor_sim::{Account, Org, OrgSpec, PD_TOKEN, PagerDutyFake};
use surveyor_store::{ChangeOp, Store};
use surveyor_tests::{TestStore, ops_since, sync_once};

async fn sync(store: &Store, fake: &PagerDutyFake, token: &str) -> RunReport {
    let toml = format!(
        "subdomain = \"acme\"\ntoken = \"{token}\"\napi_url = \"{}\"\nrequests_per_second = 1000",
        fake.url()
    );
    let config: PagerDutyConfig = toml::from_str(&toml).expect("config");
    let c = PagerDutyConnector::new("pagerduty", config).expect("connector");
    sync_once(store, &c).await
}

#[tokio::test]
async fn an_account_syncs_and_its_changes_are_recorded() {
    for ts in TestStore::all().await {
        let (store, backend) = (&ts.store, ts.backend);
        let org = Org::generate(&OrgSpec::small());
        let account = Account::from_org(&org);
        let expected = account.services.len() + account.teams.len() + account.users.len();
        let fake = PagerDutyFake::start(account).await.expect("fake");
        let mut seen = 0;

        let r = sync(store, &fake, PD_TOKEN).await;
        assert_eq!(r.status, RunStatus::Succeeded, "{backend}: {r:?}");
        assert_eq!(r.counts.entities.created, expected as u64, "{backend}");
        ops_since(store, &mut seen).await;

        let r = sync(store, &fake, PD_TOKEN).await;
        assert_eq!(
            r.counts.entities.changes(),
            0,
            "{backend}: a quiet resync writes nothing"
        );

        // A service is removed.
        fake.with_account(|a| {
            let id = a.service_id("Status Page").expect("service");
            a.services.remove(&id);
        });
        let r = sync(store, &fake, PD_TOKEN).await;
        assert_eq!(
            (r.status, r.counts.entities.deleted),
            (RunStatus::Succeeded, 1),
            "{backend}"
        );
        assert!(
            ops_since(store, &mut seen)
                .await
                .contains(&(ChangeOp::Deleted, "component:default/status-page".into())),
            "{backend}"
        );

        // A team is renamed: same id, new name.
        let old = fake.with_account(|a| {
            let team = a.teams.values_mut().next().expect("a team");
            let old = team["name"].as_str().unwrap_or_default().to_string();
            team["name"] = serde_json::json!("Renamed Responders");
            old
        });
        fake.throttle(1);
        let r = sync(store, &fake, PD_TOKEN).await;
        assert_eq!(
            r.status,
            RunStatus::Succeeded,
            "{backend}: a 429 is waited out"
        );
        assert_eq!(r.counts.entities.renamed, 1, "{backend}: {:?}", r.counts);
        let ops = ops_since(store, &mut seen).await;
        assert!(
            ops.contains(&(ChangeOp::Renamed, "group:default/renamed-responders".into())),
            "{backend}: {ops:?} (was {old})"
        );

        // A refused token: failed (the run, not only its one scope, as the README says), and
        // nothing deleted though nothing was seen.
        let r = sync(store, &fake, "not-the-token").await;
        assert_eq!(
            (r.status, r.counts.entities.deleted),
            (RunStatus::Failed, 0),
            "{backend}"
        );
        assert!(
            r.error.as_deref().is_some_and(|e| e.contains("401")),
            "{backend}: {:?}",
            r.error
        );
        let scope = r.scopes.iter().find(|s| s.scope == "acme").expect("scope");
        assert!(
            matches!(&scope.status, surveyor_model::ScopeStatus::Failed { reason } if reason.contains("401")),
            "{backend}: {:?}",
            scope.status
        );
        assert!(ops_since(store, &mut seen).await.is_empty(), "{backend}");
        ts.cleanup().await;
    }
}
