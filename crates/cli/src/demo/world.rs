//! The demo's simulated world: one org served by fake GitHub, GitLab, Kubernetes, PagerDuty and
//! Jira APIs on loopback, changed between syncs, and the config that points the connectors at it.

use std::fmt::Write as _;
use std::net::SocketAddr;

use tokio::net::{TcpListener, TcpStream};

use surveyor_sim::jira::{JIRA_API_TOKEN, JIRA_EMAIL};
use surveyor_sim::org::Mutation;
use surveyor_sim::{
    Account, Cluster, FAKE_TOKEN, GITLAB_TOKEN, GithubFake, GitlabFake, JiraFake, JiraFlavor,
    KubeFake, Org, PD_TOKEN, PagerDutyFake, WebhookSink,
};

/// The Kubernetes context (and cluster) the fake stands for.
const CLUSTER: &str = "prod";

/// The variables the written config names for the fakes' tokens, and their values. The values
/// are the simulator's fixed test tokens, not anybody's secrets; the config still only holds
/// references, as a real one would.
pub const TOKEN_VARIABLES: [(&str, &str); 5] = [
    ("SURVEYOR_DEMO_GITHUB_TOKEN", FAKE_TOKEN),
    ("SURVEYOR_DEMO_GITLAB_TOKEN", GITLAB_TOKEN),
    ("SURVEYOR_DEMO_PAGERDUTY_TOKEN", PD_TOKEN),
    ("SURVEYOR_DEMO_JIRA_API_TOKEN", JIRA_API_TOKEN),
    ("SURVEYOR_DEMO_WEBHOOK_SECRET", WEBHOOK_SECRET),
];

/// The secret the simulated APIs sign their webhooks with, and the receivers check.
const WEBHOOK_SECRET: &str = "surveyor-demo-webhook-secret";

/// The connectors that take webhooks, by their id in the written config.
const WEBHOOK_CONNECTORS: [&str; 4] = ["github", "gitlab", "pagerduty", "jira"];

/// The APIs, in the order of [`World::endpoints`].
const APIS: [&str; 5] = ["GitHub", "GitLab", "Kubernetes", "PagerDuty", "Jira"];

/// Every fake, serving views of one org, each behind a front door at a steady address.
pub struct World {
    org: Org,
    github: GithubFake,
    gitlab: GitlabFake,
    kube: KubeFake,
    pagerduty: PagerDutyFake,
    jira: JiraFake,
    /// The front doors, in the order of [`APIS`].
    fronts: Vec<Front>,
    /// Changes made so far; picks the next kind of change, so every kind comes round.
    changes: usize,
}

impl World {
    /// Starts every fake. GitLab hosts every other repository (a company on both services),
    /// the others see the whole org. The fakes listen on free ports; each is reached through
    /// a front door on `first_port + i` (when that port is free), so the URLs — which end up in
    /// entities' links — are the same from one demo to the next and a re-run on the same
    /// catalog changes nothing. Returns the world and a warning per port that was taken.
    pub async fn start(org: Org, first_port: Option<u16>) -> std::io::Result<(Self, Vec<String>)> {
        let github = GithubFake::start(vec![org.clone()]).await?;
        let gitlab = GitlabFake::start_with(org.clone(), surveyor_sim::gitlab::every_other).await?;
        let kube = KubeFake::start(Cluster::from_org(&org, CLUSTER)).await?;
        let pagerduty = PagerDutyFake::start(Account::from_org(&org)).await?;
        let jira = JiraFake::start(&org, JiraFlavor::Cloud).await?;
        let targets = [
            github.url(),
            gitlab.url(),
            kube.url(),
            pagerduty.url(),
            jira.url(),
        ];
        let mut fronts = Vec::new();
        let mut warnings = Vec::new();
        for (i, target) in targets.iter().enumerate() {
            let preferred = first_port.and_then(|p| p.checked_add(i as u16));
            let (front, warning) = Front::open(preferred, target).await?;
            if let Some(w) = warning {
                warnings.push(format!("{}: {w}", APIS[i]));
            }
            fronts.push(front);
        }
        let world = Self {
            org,
            github,
            gitlab,
            kube,
            pagerduty,
            jira,
            fronts,
            changes: 0,
        };
        Ok((world, warnings))
    }

    pub fn org(&self) -> &Org {
        &self.org
    }

    /// The APIs, for people: (what, URL).
    pub fn endpoints(&self) -> Vec<(&'static str, &str)> {
        APIS.iter()
            .zip(&self.fronts)
            .map(|(name, front)| (*name, front.url.as_str()))
            .collect()
    }

    /// The URL the connectors use for an API (an index into [`APIS`]).
    fn url(&self, api: usize) -> &str {
        self.fronts.get(api).map_or("", |f| f.url.as_str())
    }

    /// Changes the org once and shows the change to every fake. Kinds of change take turns
    /// (a rename, an owner change, a removed workload, a disbanded team, ...); a kind with
    /// nothing left to act on gives way to the next. Returns what happened.
    pub fn change(&mut self) -> String {
        let n = Mutation::ALL.len();
        let start = self.changes % n;
        self.changes += 1;
        let what = (0..n)
            .find_map(|k| self.org.mutate_as(Mutation::ALL[(start + k) % n]))
            .unwrap_or_else(|| "nothing left to change".into());
        self.publish();
        what
    }

    /// From now on the simulated APIs announce each change of the org to `surveyor serve` at
    /// `base`: GitHub, GitLab, PagerDuty and Jira as signed webhooks to `/hooks/<id>` (the
    /// Kubernetes connector watches its cluster itself).
    pub async fn send_webhooks(&self, base: &str) {
        let sink = |id: &str| WebhookSink::reliable(&format!("{base}/hooks/{id}"), WEBHOOK_SECRET);
        let [github, gitlab, pagerduty, jira] = WEBHOOK_CONNECTORS;
        self.github.send_webhooks(sink(github)).await;
        self.gitlab.send_webhooks(sink(gitlab)).await;
        self.pagerduty.send_webhooks(sink(pagerduty)).await;
        self.jira.send_webhooks(sink(jira)).await;
    }

    /// Replaces what every fake serves with the org as it is now (the cluster object by object,
    /// so that its watches see each difference).
    fn publish(&self) {
        let org = &self.org;
        self.github.with_org(&org.name, |o| *o = org.clone());
        self.gitlab.with_org(|o| *o = org.clone());
        self.kube
            .with_cluster(|c| c.become_like(&Cluster::from_org(org, CLUSTER)));
        self.pagerduty.with_account(|a| *a = Account::from_org(org));
        // Jira's projects, leads and deactivations were set up once, as a site's are; its
        // components follow the org's repositories.
        self.jira.with_org(|o| *o = org.clone());
    }

    /// The kubeconfig for the fake cluster (it holds the fake's token, as kubeconfigs do).
    pub fn kubeconfig(&self) -> String {
        KubeFake::kubeconfig(&[(CLUSTER, self.url(2))])
    }

    /// `surveyor.toml` for the real connectors against the fakes. `database` and `kubeconfig`
    /// are relative to the config file; tokens are `${ENV}` references. With `events`, the
    /// connectors take webhooks and Kubernetes is watched.
    pub fn config(
        &self,
        database: &str,
        kubeconfig: &str,
        cache: &str,
        listen: &str,
        events: bool,
    ) -> String {
        let org = &self.org.name;
        let (database, kubeconfig, cache) = (
            toml_escaped(database),
            toml_escaped(kubeconfig),
            toml_escaped(cache),
        );
        let var = |i: usize| TOKEN_VARIABLES[i].0;
        let mut out = String::new();
        out.push_str(
            "# Written by `surveyor demo`: the real connectors, pointed at simulated APIs on\n\
             # loopback that live only as long as the demo runs.\n\
             #\n\
             # Tokens are ${ENV} references, as in any surveyor.toml; `surveyor demo` sets these\n\
             # variables for itself. Reading this catalog needs none of them: run\n\
             #   surveyor --config <this file> entities list   (or changes, runs, audit)\n\
             # as it is. Only crawling needs them, and the simulated APIs live only while the\n\
             # demo runs.\n",
        );
        let _ = write!(
            out,
            r#"
[catalog]
database = "sqlite://{database}"

[server]
listen = "{listen}"

[[connectors]]
id = "github"
kind = "github"
orgs = ["{org}"]
token = "${{{github}}}"
api_url = "{github_url}"
cache_dir = "{cache}/github"
requests_per_second = 1000{hooks}

[[connectors]]
id = "gitlab"
kind = "gitlab"
groups = ["{org}"]
token = "${{{gitlab}}}"
url = "{gitlab_url}"
cache_dir = "{cache}/gitlab"
requests_per_second = 1000{hooks}

[[connectors]]
id = "k8s"
kind = "kubernetes"
contexts = ["{CLUSTER}"]
kubeconfig = "{kubeconfig}"{watch}

[[connectors]]
id = "pagerduty"
kind = "pagerduty"
subdomain = "{org}"
token = "${{{pagerduty}}}"
api_url = "{pagerduty_url}"
requests_per_second = 1000{hooks}

[[connectors]]
id = "jira"
kind = "jira"
url = "{jira_url}"
flavor = "cloud"
email = "{JIRA_EMAIL}"
api_token = "${{{jira}}}"
requests_per_second = 1000{hooks}
"#,
            github = var(0),
            gitlab = var(1),
            pagerduty = var(2),
            jira = var(3),
            github_url = self.url(0),
            gitlab_url = self.url(1),
            pagerduty_url = self.url(3),
            jira_url = self.url(4),
            hooks = if events {
                format!("\nwebhook_secret = \"${{{}}}\"", TOKEN_VARIABLES[4].0)
            } else {
                String::new()
            },
            watch = if events { "\nwatch = true" } else { "" },
        );
        out.push_str(&self.names());
        out.push_str(SCORECARDS);
        out
    }

    /// What an operator writes once so one thing is one entity whatever each tool calls it.
    fn names(&self) -> String {
        surveyor_sim::other_names(&self.org, &self.jira.site()).to_toml()
    }
}

/// A loopback port that passes every connection on to a fake: the address the connectors and
/// the links in the catalog know, whatever port the fake itself got.
struct Front {
    url: String,
    forwarder: tokio::task::JoinHandle<()>,
}

impl Drop for Front {
    fn drop(&mut self) {
        self.forwarder.abort();
    }
}

impl Front {
    /// Listens on `preferred`, or on any free port when it is taken (with a warning).
    async fn open(preferred: Option<u16>, target: &str) -> std::io::Result<(Self, Option<String>)> {
        let target: SocketAddr = target
            .trim_start_matches("http://")
            .parse()
            .map_err(|e| std::io::Error::other(format!("fake at {target}: {e}")))?;
        let (listener, warning) = match preferred {
            Some(port) => match TcpListener::bind(("127.0.0.1", port)).await {
                Ok(l) => (l, None),
                Err(e) => (
                    TcpListener::bind(("127.0.0.1", 0)).await?,
                    Some(format!(
                        "port {port} is not free ({e}), so this run's URL differs and the links it puts in the catalog change"
                    )),
                ),
            },
            None => (TcpListener::bind(("127.0.0.1", 0)).await?, None),
        };
        let url = format!("http://{}", listener.local_addr()?);
        let forwarder = tokio::spawn(async move {
            loop {
                let Ok((mut inbound, _)) = listener.accept().await else {
                    continue;
                };
                tokio::spawn(async move {
                    if let Ok(mut outbound) = TcpStream::connect(target).await {
                        let _ = tokio::io::copy_bidirectional(&mut inbound, &mut outbound).await;
                    }
                });
            }
        });
        Ok((Self { url, forwarder }, warning))
    }
}

/// Text as the content of a TOML basic string: the catalog's file name is the user's (`--db`)
/// and may hold quotes or backslashes.
fn toml_escaped(text: &str) -> String {
    text.replace('\\', "\\\\").replace('"', "\\\"")
}

/// The demo's two scorecards: operational readiness of the services that matter most, and the
/// supply chain of every Component.
const SCORECARDS: &str = r#"
# Scorecards grade the catalog after every sync (`surveyor score`, docs/scorecards.md).
[[scorecards]]
name = "operational-readiness"
title = "Operational readiness"
tier = ["tier-1", "tier-2"]
levels = ["bronze", "silver", "gold"]

[[scorecards.checks]]
name = "owner-resolved"
level = "bronze"
relation = "ownedBy"

[[scorecards.checks]]
name = "on-call"
level = "silver"
on_call = true

[[scorecards.checks]]
name = "owner-team"
level = "silver"
owner_members_at_least = 2

[[scorecards.checks]]
name = "owners-agree"
level = "gold"
no_finding = "conflicting-owners"

[[scorecards.checks]]
name = "runbook"
level = "gold"
link = "runbook"

[[scorecards]]
name = "supply-chain"
title = "Supply chain"
levels = ["bronze", "silver"]

[[scorecards.checks]]
name = "log4shell"
level = "bronze"
dependency = "maven:org.apache.logging.log4j:log4j-core >= 2.17.1"

[[scorecards.checks]]
name = "lodash-prototype-pollution"
level = "bronze"
dependency = "npm:lodash >= 4.17.21"

[[scorecards.checks]]
name = "no-event-stream"
level = "bronze"
dependency_absent = "npm:event-stream"

[[scorecards.checks]]
name = "codeowners"
level = "silver"
file = "CODEOWNERS"

[[scorecards.checks]]
name = "catalog-info"
level = "silver"
file = "catalog-info.yaml"
"#;
