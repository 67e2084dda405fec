//! The fault matrix: every connector against its fake, under every way a vendor API fails,
//! checked for the promises of the reconcile design — no wrongful deletion, the failure recorded
//! per scope, bounded retries, convergence once the fault is gone. Prints the matrix.
//!
//! Each cell: a healthy sync; the fault switched on (on a later page of the connector's main
//! list where the fault is about one page); a sync that must delete nothing, must say which scope
//! failed and why in its report and in the runs table, and must stay within the requests the
//! retry policy allows; the fault switched off; a sync that must succeed and leave the catalog
//! exactly as the first, fresh sync left it. `cargo test -p surveyor-tests --test faults --
//! --nocapture` shows the matrix; `SURVEYOR_FAULTS=github,timeout` runs the cells whose connector
//! or fault matches.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use surveyor_connector_github::{GithubConfig, GithubConnector};
use surveyor_connector_gitlab::{GitlabConfig, GitlabConnector};
use surveyor_connector_jira::{JiraConfig, JiraConnector};
use surveyor_connector_kubernetes::{KubernetesConfig, KubernetesConnector};
use surveyor_connector_pagerduty::{PagerDutyConfig, PagerDutyConnector};
use surveyor_engine::{ReconcileOptions, RunReport, RunStatus, run_connector};
use surveyor_model::{Connector, ScopeStatus};
use surveyor_sim::jira::{JIRA_API_TOKEN, JIRA_EMAIL};
use surveyor_sim::{
    Account, Cluster, FAKE_TOKEN, Fault, FaultAction, GITLAB_TOKEN, GithubFake, GitlabFake,
    JiraFake, JiraFault, JiraFaultAction, JiraFlavor, KubeFake, Org, OrgSpec, PD_TOKEN,
    PagerDutyFake,
};
use surveyor_store::{EntityFilter, Store};
use surveyor_tests::TestStore;

/// Attempts after the first that every connector is configured to make (`max_retries`).
const MAX_RETRIES: u64 = 2;
/// The per-attempt timeout every connector is configured with; the timeout fault waits longer.
const TIMEOUT_SECS: u64 = 1;
/// What the 429 fault asks clients to wait.
const RETRY_AFTER_SECS: u64 = 1;
/// The page of the main list that page faults start on (1-based): a later page, not the first.
const FAULT_PAGE: usize = 2;
/// Cells running at once; each waits mostly on backoffs and timeouts (and holds a few
/// database connections: Postgres allows 100).
const CONCURRENT_CELLS: usize = 16;

/// Cells that break a promise because of the engine rather than the connector. They are run
/// and printed (marked KNOWN) without failing the matrix, and each is reproduced by an ignored
/// test of its own until the engine is fixed; a listed cell that keeps its promises fails the
/// matrix, so the list cannot go stale.
const KNOWN_ENGINE_GAPS: &[(Conn, Kind, &str)] = &[];

fn known_gap(conn: Conn, kind: Kind) -> Option<&'static str> {
    KNOWN_ENGINE_GAPS
        .iter()
        .find(|(c, k, _)| *c == conn && *k == kind)
        .map(|(_, _, why)| *why)
}

/// The faults of the matrix, in column order.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Kind {
    /// 500 on every request of the main list, from its first page.
    Status500,
    /// 502 from page [`FAULT_PAGE`] on.
    Status502,
    /// 429 with `Retry-After` from page [`FAULT_PAGE`] on.
    TooMany,
    /// Answers slower than the client's timeout from page [`FAULT_PAGE`] on.
    Timeout,
    /// An HTML error page with status 200 where JSON was expected, from page [`FAULT_PAGE`] on.
    BadJson,
    /// Page [`FAULT_PAGE`] cut off half-way (a well-framed but incomplete JSON body).
    Truncated,
    /// The last page but one loses its way to the last page (no cursor, link, `more`), so the
    /// list looks finished one page early; the totals it carries stay true.
    NoCursor,
    /// 401 on every request: the token was revoked.
    Status401,
    /// 403 on every request of the main list: the token lost access to it.
    Status403,
    /// The main list answers a well-formed, final, empty page where there were items.
    Empty,
}

impl Kind {
    const ALL: [Kind; 10] = [
        Kind::Status500,
        Kind::Status502,
        Kind::TooMany,
        Kind::Timeout,
        Kind::BadJson,
        Kind::Truncated,
        Kind::NoCursor,
        Kind::Status401,
        Kind::Status403,
        Kind::Empty,
    ];

    fn label(self) -> &'static str {
        match self {
            Kind::Status500 => "500",
            Kind::Status502 => "502 page N",
            Kind::TooMany => "429 Retry-After",
            Kind::Timeout => "timeout",
            Kind::BadJson => "malformed JSON",
            Kind::Truncated => "truncated page",
            Kind::NoCursor => "missing next cursor",
            Kind::Status401 => "401",
            Kind::Status403 => "403",
            Kind::Empty => "empty list",
        }
    }

    /// Whether the HTTP layer retries this failure (the others fail at the first attempt).
    fn retried(self) -> bool {
        matches!(
            self,
            Kind::Status500 | Kind::Status502 | Kind::TooMany | Kind::Timeout
        )
    }

    /// Words the recorded reason must contain, one of them (the failure named, not guessed at).
    fn evidence(self) -> &'static [&'static str] {
        match self {
            Kind::Status500 => &["500"],
            Kind::Status502 => &["502"],
            Kind::TooMany => &["429", "rate limit"],
            Kind::Timeout => &["timed out", "timeout", "deadline"],
            Kind::BadJson | Kind::Truncated => &[
                "unreadable",
                "decode",
                "expected",
                "EOF",
                "JSON",
                "json",
                "unexpected",
            ],
            Kind::NoCursor => &["of", "ended", "more", "total", "remaining"],
            Kind::Status401 => &["401", "Unauthorized", "refused"],
            Kind::Status403 => &["403", "Forbidden", "forbidden", "refused"],
            Kind::Empty => &[],
        }
    }

    /// The fake-side action, and how many matching requests pass before it starts, for a main
    /// list of `pages` pages.
    fn action(self, pages: usize) -> (FaultAction, usize) {
        let later = FAULT_PAGE - 1;
        match self {
            Kind::Status500 => (FaultAction::Status(500), 0),
            Kind::Status502 => (FaultAction::Status(502), later),
            Kind::TooMany => (
                FaultAction::TooManyRequests {
                    retry_after_secs: RETRY_AFTER_SECS,
                },
                later,
            ),
            Kind::Timeout => (
                FaultAction::Delay(Duration::from_millis(TIMEOUT_SECS * 1000 + 1500)),
                later,
            ),
            Kind::BadJson => (FaultAction::BadJson, later),
            Kind::Truncated => (FaultAction::Truncate, later),
            Kind::NoCursor => (FaultAction::DropNext, pages.saturating_sub(2)),
            Kind::Status401 => (FaultAction::Status(401), 0),
            Kind::Status403 => (FaultAction::Status(403), 0),
            Kind::Empty => (FaultAction::EmptyList, 0),
        }
    }
}

/// The connectors of the matrix, in row order.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Conn {
    Github,
    Gitlab,
    Kubernetes,
    PagerDuty,
    Jira,
}

impl Conn {
    const ALL: [Conn; 5] = [
        Conn::Github,
        Conn::Gitlab,
        Conn::Kubernetes,
        Conn::PagerDuty,
        Conn::Jira,
    ];

    fn id(self) -> &'static str {
        match self {
            Conn::Github => "github",
            Conn::Gitlab => "gitlab",
            Conn::Kubernetes => "kubernetes",
            Conn::PagerDuty => "pagerduty",
            Conn::Jira => "jira",
        }
    }
}

/// A connector's fake, set up so that its main list spans several pages.
enum Rig {
    Github(GithubFake, tempfile::TempDir),
    Gitlab(GitlabFake, tempfile::TempDir),
    Kubernetes(KubeFake, tempfile::TempDir),
    PagerDuty(PagerDutyFake),
    Jira(JiraFake),
}

/// Items per page of each connector's main list (PagerDuty's is fixed at 100).
const GITHUB_PAGE: usize = 5;
const GITLAB_PAGE: usize = 5;
const KUBE_PAGE: usize = 3;
const PAGERDUTY_PAGE: usize = 100;
const JIRA_PAGE: usize = 1;

impl Rig {
    async fn start(conn: Conn) -> Self {
        let org = Org::generate(&OrgSpec::small());
        match conn {
            Conn::Github => Rig::Github(
                GithubFake::start(vec![org]).await.expect("fake"),
                tempfile::tempdir().expect("dir"),
            ),
            Conn::Gitlab => Rig::Gitlab(
                GitlabFake::start(org).await.expect("fake"),
                tempfile::tempdir().expect("dir"),
            ),
            Conn::Kubernetes => {
                let fake = KubeFake::start(Cluster::from_org(&org, "prod"))
                    .await
                    .expect("fake");
                let dir = tempfile::tempdir().expect("dir");
                std::fs::write(
                    dir.path().join("kubeconfig"),
                    KubeFake::kubeconfig(&[("prod", fake.url())]),
                )
                .expect("kubeconfig");
                Rig::Kubernetes(fake, dir)
            }
            Conn::PagerDuty => {
                // Enough repositories for three pages of services.
                let org = Org::generate(&OrgSpec {
                    repos: 330,
                    ..OrgSpec::small()
                });
                Rig::PagerDuty(
                    PagerDutyFake::start(Account::from_org(&org))
                        .await
                        .expect("fake"),
                )
            }
            Conn::Jira => Rig::Jira(
                JiraFake::start(&org, JiraFlavor::Cloud)
                    .await
                    .expect("fake"),
            ),
        }
    }

    /// Pages of the main list in a healthy crawl.
    fn pages(&self) -> usize {
        let (items, per_page) = match self {
            Rig::Github(f, _) => (
                f.org("acme").expect("org").live_repos().count(),
                GITHUB_PAGE,
            ),
            Rig::Gitlab(f, _) => {
                let org = f.org();
                (
                    org.repos.iter().filter(|r| f.serves(r)).count(),
                    GITLAB_PAGE,
                )
            }
            Rig::Kubernetes(f, _) => (f.with_cluster(|c| c.names("deployments").len()), KUBE_PAGE),
            Rig::PagerDuty(f) => (f.with_account(|a| a.services.len()), PAGERDUTY_PAGE),
            Rig::Jira(f) => (f.site().projects.len(), JIRA_PAGE),
        };
        items.div_ceil(per_page)
    }

    /// A fresh connector, as a new `surveyor sync` process builds it.
    fn connector(&self) -> Box<dyn Connector> {
        let common = format!(
            "max_retries = {MAX_RETRIES}\ntimeout_secs = {TIMEOUT_SECS}\nrequests_per_second = 1000\n"
        );
        match self {
            Rig::Github(f, dir) => {
                let toml = format!(
                    "orgs = [\"acme\"]\ntoken = \"{FAKE_TOKEN}\"\napi_url = \"{}\"\npage_size = {GITHUB_PAGE}\n{common}",
                    f.url()
                );
                let config: GithubConfig = toml::from_str(&toml).expect("config");
                Box::new(GithubConnector::new("github", config, dir.path()).expect("connector"))
            }
            Rig::Gitlab(f, dir) => {
                let toml = format!(
                    "groups = [\"acme\"]\ntoken = \"{GITLAB_TOKEN}\"\nurl = \"{}\"\npage_size = {GITLAB_PAGE}\n{common}",
                    f.url()
                );
                let config: GitlabConfig = toml::from_str(&toml).expect("config");
                Box::new(GitlabConnector::new("gitlab", config, dir.path()).expect("connector"))
            }
            Rig::Kubernetes(_, dir) => {
                let toml = format!(
                    "contexts = [\"prod\"]\nkubeconfig = \"kubeconfig\"\npage_size = {KUBE_PAGE}\ntimeout_secs = {TIMEOUT_SECS}\nmax_retries = {MAX_RETRIES}\n"
                );
                let config: KubernetesConfig = toml::from_str(&toml).expect("config");
                Box::new(
                    KubernetesConnector::new("kubernetes", config, dir.path()).expect("connector"),
                )
            }
            Rig::PagerDuty(f) => {
                let toml = format!(
                    "subdomain = \"acme\"\ntoken = \"{PD_TOKEN}\"\napi_url = \"{}\"\n{common}",
                    f.url()
                );
                let config: PagerDutyConfig = toml::from_str(&toml).expect("config");
                Box::new(PagerDutyConnector::new("pagerduty", config).expect("connector"))
            }
            Rig::Jira(f) => {
                let toml = format!(
                    "url = \"{}\"\nemail = \"{JIRA_EMAIL}\"\napi_token = \"{JIRA_API_TOKEN}\"\npage_size = {JIRA_PAGE}\n{common}",
                    f.url()
                );
                let config: JiraConfig = toml::from_str(&toml).expect("config");
                Box::new(JiraConnector::new("jira", config).expect("connector"))
            }
        }
    }

    async fn sync(&self, store: &Store) -> RunReport {
        let c = self.connector();
        run_connector(store, c.as_ref(), &ReconcileOptions::default())
            .await
            .expect("run")
    }

    /// Switches `kind` on, aimed at the main list (or at everything, for 401).
    fn inject(&self, kind: Kind) {
        let (action, skip) = kind.action(self.pages());
        let everything = kind == Kind::Status401;
        let target = |main: &str| {
            let t = if everything { "*" } else { main };
            Fault::new(t, action.clone()).skip(skip)
        };
        match self {
            Rig::Github(f, _) => f.add_fault(target("graphql:repositories")),
            Rig::Gitlab(f, _) => f.add_fault(target("rest:projects:acme")),
            Rig::Kubernetes(f, _) => f.add_fault(target("/apis/apps/v1/deployments")),
            Rig::PagerDuty(f) => f.add_fault(target("/services")),
            Rig::Jira(f) => {
                let action = match action {
                    FaultAction::Status(code) => JiraFaultAction::Status(code),
                    FaultAction::TooManyRequests { retry_after_secs } => {
                        JiraFaultAction::RateLimited { retry_after_secs }
                    }
                    FaultAction::Delay(d) => JiraFaultAction::Delay(d),
                    FaultAction::BadJson => JiraFaultAction::BadJson,
                    FaultAction::Truncate => JiraFaultAction::Truncate,
                    FaultAction::DropNext => JiraFaultAction::DropNext,
                    FaultAction::EmptyList => JiraFaultAction::EmptyList,
                    other => panic!("no Jira counterpart for {other:?}"),
                };
                let t = if everything { "*" } else { "projects" };
                f.add_fault(JiraFault::new(t, action).skip(skip));
            }
        }
    }

    fn clear(&self) {
        match self {
            Rig::Github(f, _) => f.clear_faults(),
            Rig::Gitlab(f, _) => f.clear_faults(),
            Rig::Kubernetes(f, _) => f.clear_faults(),
            Rig::PagerDuty(f) => f.clear_faults(),
            Rig::Jira(f) => f.clear_faults(),
        }
    }

    /// Requests the fake has answered so far.
    fn requests(&self) -> u64 {
        match self {
            Rig::Github(f, _) => f.stats().requests,
            Rig::Gitlab(f, _) => f.stats().requests,
            Rig::Kubernetes(f, _) => f.stats().requests,
            Rig::PagerDuty(f) => f.stats().requests,
            Rig::Jira(f) => f.stats().requests,
        }
    }

    /// Requests a crawl may add to a healthy one when it meets the fault, by the retry policy:
    /// the failing request is tried `1 + max_retries` times instead of once, and the list it
    /// belongs to stops there. Kubernetes may also list a kind per namespace when the cluster-
    /// wide list is refused.
    fn extra_requests(&self, kind: Kind) -> u64 {
        let retries = if kind.retried() { MAX_RETRIES } else { 0 };
        let fallback = match (self, kind) {
            (Rig::Kubernetes(f, _), Kind::Status403) => {
                f.with_cluster(|c| c.names("namespaces").len()) as u64
            }
            _ => 0,
        };
        retries + fallback
    }
}

/// Live entities of the catalog by key, with their content hash.
async fn live(store: &Store) -> BTreeMap<String, String> {
    store
        .list_entities(&EntityFilter::default())
        .await
        .expect("entities")
        .into_iter()
        .map(|e| (e.entity_ref, e.hash))
        .collect()
}

/// What one cell found.
struct Cell {
    conn: Conn,
    kind: Kind,
    backend: &'static str,
    /// How the faulted run ended, in a line.
    outcome: String,
    kept: (usize, usize),
    requests: (u64, u64),
    converged: bool,
    /// Promises the cell broke.
    broken: Vec<String>,
}

fn first_line(s: &str, max: usize) -> String {
    let line = s.lines().next().unwrap_or_default();
    if line.chars().count() > max {
        format!("{}…", line.chars().take(max).collect::<String>())
    } else {
        line.to_string()
    }
}

async fn run_cell(conn: Conn, kind: Kind, ts: TestStore) -> Cell {
    let store = &ts.store;
    let rig = Rig::start(conn).await;
    let mut broken = Vec::new();

    let before_requests = rig.requests();
    let healthy = rig.sync(store).await;
    let healthy_requests = rig.requests() - before_requests;
    assert_eq!(
        healthy.status,
        RunStatus::Succeeded,
        "{} {}: the healthy sync: {healthy:?}",
        conn.id(),
        ts.backend
    );
    let fresh = live(store).await;

    rig.inject(kind);
    let before_requests = rig.requests();
    let faulted = rig.sync(store).await;
    let faulted_requests = rig.requests() - before_requests;
    let after = live(store).await;

    // No wrongful deletion: every entity seen before is still live.
    let lost: Vec<&String> = fresh.keys().filter(|k| !after.contains_key(*k)).collect();
    if !lost.is_empty() || faulted.counts.entities.deleted > 0 {
        broken.push(format!(
            "deleted {} entities ({} counted), e.g. {:?}",
            lost.len(),
            faulted.counts.entities.deleted,
            lost.iter().take(3).collect::<Vec<_>>()
        ));
    }

    // The run says which scope failed and why, in its report and in the runs table.
    let incomplete: Vec<_> = faulted
        .scopes
        .iter()
        .filter(|s| !s.status.is_complete())
        .collect();
    let refused = faulted.refused();
    let outcome = if let Some(s) = incomplete.first() {
        let (word, reason) = match &s.status {
            ScopeStatus::Partial { reason } => ("partial", reason.as_str()),
            ScopeStatus::Failed { reason } => ("failed", reason.as_str()),
            ScopeStatus::Complete => ("complete", ""),
            ScopeStatus::Refreshed => ("refreshed", ""),
        };
        let evidence = kind.evidence();
        if !evidence.is_empty() && !evidence.iter().any(|w| reason.contains(w)) {
            broken.push(format!(
                "scope {:?} is {word} but its reason does not name the fault ({evidence:?}): {reason}",
                s.scope
            ));
        }
        format!("{word} {}: {}", s.scope, first_line(reason, 90))
    } else if refused {
        let r = faulted
            .scopes
            .iter()
            .find(|s| !s.refused.is_empty())
            .expect("a refusal");
        format!(
            "guard refused {} of {} {} in {}",
            r.refused[0].would_delete, r.refused[0].live, r.refused[0].kind, r.scope
        )
    } else if faulted.status == RunStatus::Succeeded && after == fresh {
        "recovered: complete, catalog unchanged".to_string()
    } else {
        broken.push(format!(
            "the run looks complete ({:?}) yet the catalog changed",
            faulted.status
        ));
        format!("{:?}, every scope complete", faulted.status)
    };
    if (!incomplete.is_empty() || refused) && faulted.status == RunStatus::Succeeded {
        broken.push("a scope failed but the run says succeeded".into());
    }
    let runs = store
        .list_runs(Some(conn.id()), 1)
        .await
        .expect("runs table");
    match runs.first() {
        Some(row) if row.id == faulted.run_id => {
            if row.status != faulted.status.as_str() {
                broken.push(format!(
                    "runs table says {:?}, the report {:?}",
                    row.status, faulted.status
                ));
            }
            let recorded = row
                .outcome
                .as_ref()
                .and_then(|o| o["scopes"].as_array().cloned())
                .unwrap_or_default();
            for s in &incomplete {
                let found = recorded.iter().any(|r| {
                    r["scope"] == s.scope.as_str()
                        && r["status"]["status"] != "complete"
                        && r["status"]["reason"].as_str() == s.status.reason()
                });
                if !found {
                    broken.push(format!(
                        "the runs table does not record scope {:?} as incomplete with its reason",
                        s.scope
                    ));
                }
            }
            if refused && row.error.as_deref().is_none_or(|e| !e.contains("refused")) {
                broken.push("the runs table does not say the guard refused".into());
            }
        }
        other => broken.push(format!(
            "the faulted run {} is not the latest in the runs table: {other:?}",
            faulted.run_id
        )),
    }

    // Retries are bounded by the retry policy.
    let bound = healthy_requests + rig.extra_requests(kind);
    if faulted_requests > bound {
        broken.push(format!(
            "{faulted_requests} requests, more than the {bound} the retry policy allows"
        ));
    }

    // The fault goes; the next run converges on what the fresh sync gave.
    rig.clear();
    let next = rig.sync(store).await;
    let converged_catalog = live(store).await;
    let converged = next.status == RunStatus::Succeeded && converged_catalog == fresh;
    if !converged {
        let differ: Vec<&String> = fresh
            .iter()
            .filter(|(k, h)| converged_catalog.get(*k) != Some(h))
            .map(|(k, _)| k)
            .chain(converged_catalog.keys().filter(|k| !fresh.contains_key(*k)))
            .take(3)
            .collect();
        broken.push(format!(
            "did not converge: {:?} ({} scopes incomplete), e.g. {differ:?}",
            next.status,
            next.scopes
                .iter()
                .filter(|s| !s.status.is_complete())
                .count()
        ));
    }

    let cell = Cell {
        conn,
        kind,
        backend: ts.backend,
        outcome,
        kept: (
            fresh.keys().filter(|k| after.contains_key(*k)).count(),
            fresh.len(),
        ),
        requests: (faulted_requests, bound),
        converged,
        broken,
    };
    ts.cleanup().await;
    cell
}

fn selected(conn: Conn, kind: Kind) -> bool {
    let Ok(filter) = std::env::var("SURVEYOR_FAULTS") else {
        return true;
    };
    filter.split(',').map(str::trim).any(|f| {
        f.eq_ignore_ascii_case(conn.id()) || kind.label().to_lowercase().contains(&f.to_lowercase())
    })
}

fn print_matrix(cells: &[Cell]) {
    let headers = [
        "CONNECTOR",
        "FAULT",
        "DB",
        "OUTCOME OF THE FAULTED RUN",
        "KEPT",
        "REQUESTS",
        "NEXT RUN",
    ];
    let rows: Vec<[String; 7]> = cells
        .iter()
        .map(|c| {
            [
                c.conn.id().to_string(),
                c.kind.label().to_string(),
                c.backend.to_string(),
                c.outcome.clone(),
                format!("{}/{}", c.kept.0, c.kept.1),
                format!("{} ≤ {}", c.requests.0, c.requests.1),
                if c.converged {
                    "converged".into()
                } else {
                    "NOT CONVERGED".into()
                },
            ]
        })
        .collect();
    let mut widths: Vec<usize> = headers.iter().map(|h| h.chars().count()).collect();
    for r in &rows {
        for (w, v) in widths.iter_mut().zip(r) {
            *w = (*w).max(v.chars().count());
        }
    }
    let line = |cols: Vec<&str>| {
        let padded: Vec<String> = cols
            .iter()
            .zip(&widths)
            .map(|(v, w)| format!("{v}{}", " ".repeat(w - v.chars().count())))
            .collect();
        println!("{}", padded.join("  ").trim_end());
    };
    println!();
    line(headers.to_vec());
    for r in &rows {
        line(r.iter().map(String::as_str).collect());
    }

    // The same as a grid: connector x fault -> what stopped the damage.
    println!();
    let short = |c: &Cell| {
        let word = c.outcome.split_whitespace().next().unwrap_or_default();
        let mark = match (c.broken.is_empty(), known_gap(c.conn, c.kind)) {
            (true, _) => "",
            (false, Some(_)) => " KNOWN",
            (false, None) => "!",
        };
        match word {
            "guard" => format!("refused{mark}"),
            "recovered:" => format!("recovered{mark}"),
            w => format!("{w}{mark}"),
        }
    };
    let kinds: Vec<Kind> = Kind::ALL
        .into_iter()
        .filter(|k| cells.iter().any(|c| c.kind == *k))
        .collect();
    let first_width = cells
        .iter()
        .map(|c| {
            c.conn.id().len()
                + if c.backend == "sqlite" {
                    0
                } else {
                    c.backend.len() + 1
                }
        })
        .max()
        .unwrap_or(10);
    let mut grid_widths = vec![first_width];
    grid_widths.extend(kinds.iter().map(|k| k.label().len().max(9)));
    let grid_line = |cols: Vec<String>| {
        let padded: Vec<String> = cols
            .iter()
            .zip(&grid_widths)
            .map(|(v, w)| format!("{v:<w$}"))
            .collect();
        println!("{}", padded.join("  ").trim_end());
    };
    let mut head = vec![String::new()];
    head.extend(kinds.iter().map(|k| k.label().to_string()));
    grid_line(head);
    let backends: Vec<&str> = {
        let mut b: Vec<&str> = cells.iter().map(|c| c.backend).collect();
        b.dedup();
        b
    };
    for backend in backends {
        for conn in Conn::ALL {
            let mut row = vec![if backend == "sqlite" {
                conn.id().to_string()
            } else {
                format!("{}/{backend}", conn.id())
            }];
            let mut any = false;
            for k in &kinds {
                match cells
                    .iter()
                    .find(|c| c.conn == conn && c.kind == *k && c.backend == backend)
                {
                    Some(c) => {
                        any = true;
                        row.push(short(c));
                    }
                    None => row.push("-".into()),
                }
            }
            if any {
                grid_line(row);
            }
        }
    }
    println!(
        "(! = a promise broken, see the failures below; KNOWN = an engine gap, listed in KNOWN_ENGINE_GAPS)"
    );
    for c in cells.iter().filter(|c| !c.broken.is_empty()) {
        if let Some(why) = known_gap(c.conn, c.kind) {
            println!(
                "KNOWN {} × {} ({}): {}\n  because {why}",
                c.conn.id(),
                c.kind.label(),
                c.backend,
                c.broken.join("; ")
            );
        }
    }
}

/// Runs the cells `selected` picks, on SQLite and (when configured) Postgres, and prints them.
async fn run_matrix(selected: impl Fn(Conn, Kind) -> bool) -> Vec<Cell> {
    let permits = Arc::new(tokio::sync::Semaphore::new(CONCURRENT_CELLS));
    let mut tasks = tokio::task::JoinSet::new();
    let mut order = 0usize;
    // SQLite always; Postgres too when configured (CI), each cell in its own schema.
    let backends = if std::env::var(surveyor_tests::PG_ENV).is_ok() {
        vec!["sqlite", "postgres"]
    } else {
        vec!["sqlite"]
    };
    for backend in backends {
        for conn in Conn::ALL {
            for kind in Kind::ALL {
                if !selected(conn, kind) {
                    continue;
                }
                let permits = Arc::clone(&permits);
                let at = order;
                order += 1;
                tasks.spawn(async move {
                    let _permit = permits.acquire_owned().await.expect("semaphore");
                    let ts = match backend {
                        "sqlite" => TestStore::sqlite().await,
                        _ => TestStore::postgres().await.expect("postgres"),
                    };
                    (at, run_cell(conn, kind, ts).await)
                });
            }
        }
    }
    let mut cells: Vec<(usize, Cell)> = Vec::new();
    while let Some(done) = tasks.join_next().await {
        match done {
            Ok(cell) => cells.push(cell),
            Err(e) => std::panic::resume_unwind(e.into_panic()),
        }
    }
    cells.sort_by_key(|(at, _)| *at);
    let cells: Vec<Cell> = cells.into_iter().map(|(_, c)| c).collect();
    if !cells.is_empty() {
        print_matrix(&cells);
    }
    cells
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn every_connector_survives_every_fault() {
    let cells = run_matrix(selected).await;
    assert!(!cells.is_empty(), "SURVEYOR_FAULTS selected no cell");
    let mut failures: Vec<String> = Vec::new();
    for c in &cells {
        let at = format!("{} × {} ({})", c.conn.id(), c.kind.label(), c.backend);
        match known_gap(c.conn, c.kind) {
            Some(_) if c.broken.is_empty() => failures.push(format!(
                "{at}: keeps its promises now; take it off KNOWN_ENGINE_GAPS"
            )),
            Some(_) => {}
            None => failures.extend(c.broken.iter().map(|b| format!("{at}: {b}"))),
        }
    }
    assert!(
        failures.is_empty(),
        "{} promises broken:\n{}",
        failures.len(),
        failures.join("\n")
    );
}

/// An empty cluster-wide list against a cluster of small namespaces: each namespace alone is
/// under the guard's floor, the run as a whole is a mass deletion, and the run guard refuses it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_empty_cluster_wide_list_deletes_nothing() {
    let cells = run_matrix(|c, k| c == Conn::Kubernetes && k == Kind::Empty).await;
    let broken: Vec<&String> = cells.iter().flat_map(|c| &c.broken).collect();
    assert!(broken.is_empty(), "{broken:#?}");
}
