//! The github connector against the simulated GitHub at org scale: requests for a full sync
//! against the floor GitHub's API allows, the 304 share of a quiet resync, and wall times with
//! simulated latency per request.

use std::time::{Duration, Instant};

use anyhow::Context;
use surveyor_connector_github::{GithubConfig, GithubConnector};
use surveyor_engine::{ReconcileOptions, run_connector};
use surveyor_sim::{FAKE_TOKEN, GithubFake, Org, OrgSpec};
use surveyor_store::Store;

pub struct GithubBench {
    pub repos: usize,
    pub teams: usize,
    pub people: usize,
    pub latency_ms: u64,
    pub requests_per_second: u32,
}

pub async fn run(b: GithubBench) -> anyhow::Result<()> {
    let org = Org::generate(&OrgSpec {
        repos: b.repos,
        teams: b.teams,
        people: b.people,
        ..OrgSpec::small()
    });
    let fake = GithubFake::start(vec![org.clone()]).await?;
    fake.set_latency(Duration::from_millis(b.latency_ms));
    let dir = super::tempfile_dir()?;
    let store = Store::connect(&format!("sqlite://{}/bench.db", dir.display()))
        .await
        .context("open SQLite")?;
    let connector = || -> anyhow::Result<GithubConnector> {
        let toml = format!(
            "orgs = [\"acme\"]\ntoken = \"{FAKE_TOKEN}\"\napi_url = \"{}\"\nrequests_per_second = {}",
            fake.url(),
            b.requests_per_second
        );
        let config: GithubConfig = toml::from_str(&toml)?;
        Ok(GithubConnector::new("github", config, &dir)?)
    };
    let max_team = org.teams.iter().map(|t| t.members.len()).max().unwrap_or(0);
    println!(
        "org: {} repos, {} teams (largest {max_team} members), {} people; latency {} ms per request; client limit {} requests/s",
        org.repos.len(),
        org.teams.len(),
        org.people.len(),
        b.latency_ms,
        b.requests_per_second
    );

    for phase in ["full sync", "quiet resync"] {
        fake.reset_stats();
        let c = connector()?;
        let started = Instant::now();
        let report = run_connector(&store, &c, &ReconcileOptions::default()).await?;
        let wall = started.elapsed();
        let f = fake.stats();
        let s = c.stats();
        let repo_pages = f
            .by_target
            .get("graphql:repositories")
            .copied()
            .unwrap_or(0);
        let team_pages = f.by_target.get("graphql:teams").copied().unwrap_or(0);
        let overflow = f.by_target.get("graphql:team").copied().unwrap_or(0);
        let target =
            org.repos.len().div_ceil(100) + org.teams.len().div_ceil(100) + overflow as usize;
        println!(
            "\n{phase}: {} in {:.2} s",
            report.status.as_str(),
            wall.as_secs_f64()
        );
        println!(
            "  GraphQL requests: {} ({repo_pages} repository pages, {team_pages} team pages, {overflow} member-overflow pages); target ceil(repos/100)+ceil(teams/100)+overflow = {target}",
            f.graphql
        );
        println!(
            "  REST requests: {} ({} answered 304 = {:.1}%)",
            f.rest,
            f.rest_not_modified,
            if f.rest == 0 {
                0.0
            } else {
                100.0 * f.rest_not_modified as f64 / f.rest as f64
            }
        );
        println!(
            "  all requests: {}; retries {}; bytes received {:.1} MB",
            f.requests,
            s.retries,
            s.bytes as f64 / 1e6
        );
        println!(
            "  catalog: created {}, updated {}, deleted {}, unchanged {}",
            report.counts.created,
            report.counts.updated,
            report.counts.deleted,
            report.counts.unchanged
        );
    }
    store.close().await;
    let _ = std::fs::remove_dir_all(&dir);
    Ok(())
}
