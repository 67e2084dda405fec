//! The `github-requests` scenario: HTTP requests the github connector makes for a full sync of
//! a simulated org, against the floor GitHub's API allows and against what Backstage's GitHub
//! discovery would ask for the same org, with wall time under simulated latency.

use std::time::{Duration, Instant};

use anyhow::Context;
use serde::Serialize;
use surveyor_connector_github::{GithubConfig, GithubConnector};
use surveyor_engine::{ReconcileOptions, run_connector};
use surveyor_sim::{FAKE_TOKEN, GithubFake, Org, OrgSpec};
use surveyor_store::Store;

use crate::report::{Outcome, Table, fmt_int, ratio, round};

#[derive(Serialize, clap::Args)]
pub struct GithubBench {
    #[arg(long, default_value_t = 10_000)]
    pub repos: usize,
    #[arg(long, default_value_t = 500)]
    pub teams: usize,
    #[arg(long, default_value_t = 4_000)]
    pub people: usize,
    /// Added to every answer of the fake
    #[arg(long, default_value_t = 50)]
    pub latency_ms: u64,
    /// The connector's own request rate limit (its default is 10)
    #[arg(long, default_value_t = 10)]
    pub requests_per_second: u32,
}

/// Backstage's documented page sizes (`catalog.providers.github.*.pageSizes`, defaults in
/// `@backstage/plugin-catalog-backend-module-github`, `DEFAULT_PAGE_SIZES`).
pub const BACKSTAGE_REPOS_PER_PAGE: usize = 25;
pub const BACKSTAGE_TEAMS_PER_PAGE: usize = 25;
pub const BACKSTAGE_TEAM_MEMBERS_PER_PAGE: usize = 50;
pub const BACKSTAGE_ORG_MEMBERS_PER_PAGE: usize = 50;

/// What Backstage's GitHub discovery asks for one org, counted from its documented pattern.
#[derive(Serialize, Debug, Clone, PartialEq, Eq)]
pub struct BackstageLine {
    /// `GithubEntityProvider`: `repositories(first: 25)` pages.
    pub repository_pages: u64,
    /// One request per discovered location ("issues an API request for each discovered
    /// location", Backstage's GitHub discovery docs): every repository, so that the catalog
    /// covers all of them as surveyor's does.
    pub location_reads: u64,
    /// `GithubOrgEntityProvider`: `teams(first: 25)` pages.
    pub team_pages: u64,
    /// Teams with more than 50 direct members: their members paged 50 at a time.
    pub team_member_pages: u64,
    /// `membersWithRole(first: 50)` pages.
    pub user_pages: u64,
    pub total: u64,
    /// The same with location reads only for repositories that have a catalog-info.yaml
    /// (what Backstage catalogues when nobody writes descriptors for the rest).
    pub total_descriptors_only: u64,
}

impl BackstageLine {
    pub fn for_org(org: &Org) -> Self {
        let repos = org.live_repos().count();
        let with_descriptor = org
            .live_repos()
            .filter(|r| r.files.contains_key("catalog-info.yaml"))
            .count();
        let teams: Vec<usize> = org.live_teams().map(|t| t.members.len()).collect();
        let members = org.live_people().count();
        let pages = |n: usize, per: usize| n.div_ceil(per) as u64;
        let repository_pages = pages(repos, BACKSTAGE_REPOS_PER_PAGE);
        let team_pages = pages(teams.len(), BACKSTAGE_TEAMS_PER_PAGE);
        let team_member_pages = teams
            .iter()
            .filter(|m| **m > BACKSTAGE_TEAM_MEMBERS_PER_PAGE)
            .map(|m| pages(*m, BACKSTAGE_TEAM_MEMBERS_PER_PAGE))
            .sum();
        let user_pages = pages(members, BACKSTAGE_ORG_MEMBERS_PER_PAGE);
        let listing = repository_pages + team_pages + team_member_pages + user_pages;
        Self {
            repository_pages,
            location_reads: repos as u64,
            team_pages,
            team_member_pages,
            user_pages,
            total: listing + repos as u64,
            total_descriptors_only: listing + with_descriptor as u64,
        }
    }
}

/// The floor the issue sets: `ceil(repos/100) + ceil(teams/100)` GraphQL pages.
pub fn floor(repos: usize, teams: usize) -> u64 {
    (repos.div_ceil(100) + teams.div_ceil(100)) as u64
}

#[derive(Serialize)]
struct Results {
    org: OrgFigures,
    requests: RequestFigures,
    floor: u64,
    floor_formula: &'static str,
    /// The floor plus the org member list at 100 per page (`ceil(members/100)`).
    floor_with_members: u64,
    graphql_over_floor: f64,
    backstage: BackstageLine,
    backstage_over_ours: f64,
    wall_s: f64,
    created: u64,
    status: String,
}

#[derive(Serialize)]
pub struct OrgFigures {
    pub repos: usize,
    pub teams: usize,
    pub people: usize,
    pub org_members: usize,
    pub largest_team: usize,
    pub repos_with_descriptor: usize,
}

impl OrgFigures {
    pub fn of(org: &Org) -> Self {
        Self {
            repos: org.live_repos().count(),
            teams: org.live_teams().count(),
            people: org.people.len(),
            org_members: org.live_people().count(),
            largest_team: org.live_teams().map(|t| t.members.len()).max().unwrap_or(0),
            repos_with_descriptor: org
                .live_repos()
                .filter(|r| r.files.contains_key("catalog-info.yaml"))
                .count(),
        }
    }
}

#[derive(Serialize)]
struct RequestFigures {
    total: u64,
    graphql: u64,
    graphql_repository_pages: u64,
    graphql_team_pages: u64,
    graphql_team_overflow_pages: u64,
    rest: u64,
    rest_not_modified: u64,
    by_target: std::collections::BTreeMap<String, u64>,
    retries: u64,
    bytes_received: u64,
}

pub fn org_for(repos: usize, teams: usize, people: usize) -> Org {
    Org::generate(&OrgSpec {
        repos,
        teams,
        people,
        ..OrgSpec::small()
    })
}

pub fn connector(
    fake: &GithubFake,
    org: &str,
    requests_per_second: u32,
    dir: &std::path::Path,
) -> anyhow::Result<GithubConnector> {
    let toml = format!(
        "orgs = [\"{org}\"]\ntoken = \"{FAKE_TOKEN}\"\napi_url = \"{}\"\nrequests_per_second = {requests_per_second}",
        fake.url()
    );
    let config: GithubConfig = toml::from_str(&toml).context("github config")?;
    Ok(GithubConnector::new("github", config, dir)?)
}

pub async fn run(b: GithubBench) -> anyhow::Result<Outcome> {
    let org = org_for(b.repos, b.teams, b.people);
    let fake = GithubFake::start(vec![org.clone()]).await?;
    fake.set_latency(Duration::from_millis(b.latency_ms));
    let dir = crate::db::tempfile_dir()?;
    let store = Store::connect(&format!("sqlite://{}/bench.db", dir.display()))
        .await
        .context("open SQLite")?;
    let figures = OrgFigures::of(&org);
    println!(
        "org: {} repos, {} teams (largest {} members), {} org members; {} ms per answer; client limit {} requests/s",
        figures.repos,
        figures.teams,
        figures.largest_team,
        figures.org_members,
        b.latency_ms,
        b.requests_per_second
    );

    let c = connector(&fake, &org.name, b.requests_per_second, &dir)?;
    let started = Instant::now();
    let report = run_connector(&store, &c, &ReconcileOptions::default()).await?;
    let wall = started.elapsed().as_secs_f64();
    let f = fake.stats();
    let s = c.stats();
    store.close().await;
    let _ = std::fs::remove_dir_all(&dir);

    let target = |t: &str| f.by_target.get(t).copied().unwrap_or(0);
    let requests = RequestFigures {
        total: f.requests,
        graphql: f.graphql,
        graphql_repository_pages: target("graphql:repositories"),
        graphql_team_pages: target("graphql:teams"),
        graphql_team_overflow_pages: target("graphql:team"),
        rest: f.rest,
        rest_not_modified: f.rest_not_modified,
        by_target: f.by_target.clone(),
        retries: s.retries,
        bytes_received: s.bytes,
    };
    let floor = floor(figures.repos, figures.teams);
    let backstage = BackstageLine::for_org(&org);
    let results = Results {
        graphql_over_floor: round(ratio(requests.graphql as f64, floor as f64), 3),
        backstage_over_ours: round(ratio(backstage.total as f64, requests.total as f64), 1),
        floor,
        floor_formula: "ceil(repos/100) + ceil(teams/100)",
        floor_with_members: floor + figures.org_members.div_ceil(100) as u64,
        backstage,
        org: figures,
        requests,
        wall_s: round(wall, 3),
        created: report.counts.entities.created,
        status: report.status.as_str().to_string(),
    };
    print(&results, &b);
    Outcome::new(b, results)
}

fn print(r: &Results, b: &GithubBench) {
    let mut t = Table::new(
        format!(
            "github-requests: full sync of {} repos / {} teams / {} org members",
            r.org.repos, r.org.teams, r.org.org_members
        ),
        &["requests", "surveyor", "floor", "Backstage pattern"],
    );
    let q = &r.requests;
    t.row(vec![
        "GraphQL repository pages".into(),
        fmt_int(q.graphql_repository_pages),
        fmt_int(r.org.repos.div_ceil(100) as u64),
        fmt_int(r.backstage.repository_pages),
    ]);
    t.row(vec![
        "GraphQL team pages (+ member overflow)".into(),
        format!(
            "{} + {}",
            fmt_int(q.graphql_team_pages),
            fmt_int(q.graphql_team_overflow_pages)
        ),
        fmt_int(r.org.teams.div_ceil(100) as u64),
        format!(
            "{} + {}",
            fmt_int(r.backstage.team_pages),
            fmt_int(r.backstage.team_member_pages)
        ),
    ]);
    t.row(vec![
        "org members".into(),
        format!("{} (REST)", fmt_int(q.rest)),
        fmt_int(r.org.org_members.div_ceil(100) as u64),
        format!("{} (GraphQL)", fmt_int(r.backstage.user_pages)),
    ]);
    t.row(vec![
        "per-repository reads".into(),
        "0".into(),
        "-".into(),
        fmt_int(r.backstage.location_reads),
    ]);
    t.row(vec![
        "all requests".into(),
        fmt_int(q.total),
        fmt_int(r.floor_with_members),
        fmt_int(r.backstage.total),
    ]);
    t.note(format!(
        "GraphQL {} = {:.2}x the floor {} ({}; the org members are {} pages more); Backstage's pattern is {:.1}x our requests ({} with reads only for the {} repos that have a catalog-info.yaml)",
        q.graphql,
        r.graphql_over_floor,
        r.floor,
        r.floor_formula,
        r.floor_with_members - r.floor,
        r.backstage_over_ours,
        fmt_int(r.backstage.total_descriptors_only),
        r.org.repos_with_descriptor
    ));
    t.note(format!(
        "sync {} in {:.2} s ({} ms per answer, limit {} requests/s): {} entities created, {} retries, {:.1} MB received",
        r.status,
        r.wall_s,
        b.latency_ms,
        b.requests_per_second,
        fmt_int(r.created),
        q.retries,
        q.bytes_received as f64 / 1e6
    ));
    t.print();
}
