//! Credentials never leave the process: `surveyor validate`, `sync` and `serve` run against every
//! fake vendor API with sentinel credentials (trace-level JSON logs, refused tokens, failing
//! APIs, broken configs), then the sentinels are searched for — raw, base64 at every alignment,
//! as Jira's Basic pair, URL-encoded — in stdout and stderr, a full dump of the database,
//! `/metrics`, every API response, the exported traces and every file the runs left behind.
//! SQLite always; Postgres too when `SURVEYOR_TEST_DATABASE_URL` is set.

mod common;

use std::fs::File;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use common::{collector, free_port, surveyor_in};
use serde_json::Value;
use surveyor_sim::jira::JIRA_EMAIL;
use surveyor_sim::{
    Account, Cluster, FakeApp, Fault, FaultAction, GithubFake, GitlabFake, JiraFake, JiraFault,
    JiraFaultAction, JiraFlavor, KUBE_TOKEN, KubeFake, Org, OrgSpec, PagerDutyFake, percent_encode,
};

/// Every sentinel holds this marker, so one search finds any of them written out as they are
/// (and URL-encoded: the marker has no characters that encoding changes).
const MARK: &str = "SENTINEL";

/// Credentials the fakes accept. Characters `+ / = :` make their encoded forms differ from the
/// raw ones.
const GITHUB: &str = "ghp_SENTINELgithub7Qx9Zr2Lw8Kp4Vm6Tn3";
const GITLAB: &str = "glpat-SENTINELgitlab5Hd8Jq2";
const KUBE: &str = "SENTINELkube3Fg7Yt1Rw/x+y=";
const PAGERDUTY: &str = "u+SENTINELpagerduty9Wb4";
const JIRA_API: &str = "SENTINELjiraCloud2Nx6/Pq=";
const JIRA_PAT: &str = "SENTINELjiraPat8Mv3:z";
const READ: &str = "SENTINELreader4Kc9";
const TRIGGER: &str = "SENTINELoperator1Ds5";
/// Postgres only (trust authentication never asks for it, so any value connects).
const DB_PASSWORD: &str = "SENTINELdbpass6Hy2";
/// `--log` directives that put surveyor and the libraries under it at trace level.
const EVERYTHING: &str = "trace,hyper=trace,hyper_util=trace,h2=trace,reqwest=trace,rustls=trace,\
     sqlx=trace,kube=trace,kube_client=trace,tower=trace,tower_http=trace,octocrab=trace";

/// `surveyor sync` with trace-level JSON logs and JSON reports.
const TRACED_SYNC: &[&str] = &[
    "sync",
    "--log",
    "trace",
    "--log-format",
    "json",
    "--format",
    "json",
];

/// A password inside connectors' URLs (`http://user:${...}@host`), as a proxy would want.
const URL_PASSWORD: &str = "SENTINELurlpass5Rt";

/// Credentials no fake accepts, for the runs that must fail with 401s.
const WRONG: &str = "SENTINELwrong0Zz0";

/// The environment variables the config refers to, with the values the good runs use.
fn good_env(database: &str) -> Vec<(&'static str, String)> {
    vec![
        ("SECRETS_TEST_DATABASE", database.to_string()),
        ("SECRETS_TEST_GITHUB", GITHUB.into()),
        ("SECRETS_TEST_GITLAB", GITLAB.into()),
        ("SECRETS_TEST_PAGERDUTY", PAGERDUTY.into()),
        ("SECRETS_TEST_JIRA_API", JIRA_API.into()),
        ("SECRETS_TEST_JIRA_PAT", JIRA_PAT.into()),
        ("SECRETS_TEST_READ", READ.into()),
        ("SECRETS_TEST_TRIGGER", TRIGGER.into()),
        // The binary reads its own --log; a RUST_LOG=trace must not widen anything either.
        ("RUST_LOG", "trace".into()),
        ("NO_COLOR", "1".into()),
    ]
}

fn wrong_env(database: &str) -> Vec<(&'static str, String)> {
    good_env(database)
        .into_iter()
        .map(|(k, v)| match k {
            "SECRETS_TEST_DATABASE" | "RUST_LOG" | "NO_COLOR" => (k, v),
            _ => (k, format!("{WRONG}{k}")),
        })
        .collect()
}

// ---------------------------------------------------------------------------------------------
// What counts as a leak.

const B64: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

fn base64(bytes: &[u8]) -> String {
    let mut out = String::new();
    for chunk in bytes.chunks(3) {
        let b = [
            chunk[0],
            chunk.get(1).copied().unwrap_or(0),
            chunk.get(2).copied().unwrap_or(0),
        ];
        let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
        for i in 0..=chunk.len() {
            out.push(B64[((n >> (18 - 6 * i)) & 63) as usize] as char);
        }
    }
    out
}

/// The ways a secret could be written down: as is, URL-encoded, and base64 (standard and
/// URL-safe) wherever it starts relative to the 3-byte groups, alone or inside Jira's
/// `email:token` pair.
fn forms(secret: &str) -> Vec<String> {
    let mut out = vec![secret.to_string(), percent_encode(secret)];
    for skip in 0..3 {
        let tail = &secret.as_bytes()[skip..];
        let encoded = base64(tail);
        // The last group depends on what follows the secret; the others do not.
        let stable = &encoded[..encoded.len().saturating_sub(4)];
        out.push(stable.to_string());
        out.push(stable.replace('+', "-").replace('/', "_"));
    }
    out.push(base64(format!("{JIRA_EMAIL}:{secret}").as_bytes()));
    out
}

/// The GitHub App's private key (the connector's own test fixture).
const APP_KEY: &str = include_str!("../../../connectors/github/tests/fixtures/test-app-key.pem");
/// What the fake GitHub's installation tokens start with (`ghs_sim000…1`).
const MINTED: &str = "ghs_sim";

/// Every sentinel's every form, the marker itself, the app key's body and minted tokens.
fn needles() -> Vec<String> {
    let mut out = vec![MARK.to_string(), MARK.to_lowercase(), MINTED.to_string()];
    // Any line of the key's base64 body would give it away; a few from the middle stand for all.
    out.extend(APP_KEY.lines().skip(3).take(3).map(str::to_string));
    for s in [
        GITHUB,
        GITLAB,
        KUBE,
        PAGERDUTY,
        JIRA_API,
        JIRA_PAT,
        READ,
        TRIGGER,
        DB_PASSWORD,
        URL_PASSWORD,
        WRONG,
    ] {
        out.extend(forms(s));
    }
    out
}

/// Fails naming the first sentinel form found in `text`, with its surroundings.
fn assert_clean(what: &str, text: &[u8]) {
    let text = String::from_utf8_lossy(text);
    for needle in needles() {
        if let Some(at) = text.find(&needle) {
            let from = text.floor_char_boundary(at.saturating_sub(200));
            let to = text.ceil_char_boundary((at + needle.len() + 200).min(text.len()));
            panic!(
                "{what} leaks a secret ({needle:?}):\n...{}...",
                &text[from..to]
            );
        }
    }
}

#[test]
fn the_leak_check_finds_every_form() {
    // The check itself must be able to fail: each form of a sentinel, embedded, is caught.
    for secret in [GITHUB, KUBE, JIRA_API, PAGERDUTY] {
        for prefix in ["", "a", "ab", "abc"] {
            let embedded = format!(
                "Authorization: Basic {}",
                base64(format!("{prefix}{secret}").as_bytes())
            );
            let caught = std::panic::catch_unwind(|| assert_clean("probe", embedded.as_bytes()));
            assert!(
                caught.is_err(),
                "base64 after {prefix:?} of {secret} not caught"
            );
        }
        let basic = base64(format!("{JIRA_EMAIL}:{secret}").as_bytes());
        assert!(std::panic::catch_unwind(|| assert_clean("probe", basic.as_bytes())).is_err());
        let encoded = percent_encode(secret);
        assert!(std::panic::catch_unwind(|| assert_clean("probe", encoded.as_bytes())).is_err());
    }
    assert!(std::panic::catch_unwind(|| assert_clean("probe", b"nothing to see")).is_ok());
}

// ---------------------------------------------------------------------------------------------
// The fakes, a trace collector, and the configuration.

struct Fakes {
    github: GithubFake,
    gitlab: GitlabFake,
    kube: KubeFake,
    pagerduty: PagerDutyFake,
    jira_cloud: JiraFake,
    jira_dc: JiraFake,
}

impl Fakes {
    async fn start() -> Self {
        let org = Org::generate(&OrgSpec::small());
        let f = Self {
            github: GithubFake::start(vec![org.clone()]).await.expect("github"),
            gitlab: GitlabFake::start(org.clone()).await.expect("gitlab"),
            kube: KubeFake::start(Cluster::from_org(&org, "prod"))
                .await
                .expect("kube"),
            pagerduty: PagerDutyFake::start(Account::from_org(&org))
                .await
                .expect("pagerduty"),
            jira_cloud: JiraFake::start(&org, JiraFlavor::Cloud)
                .await
                .expect("jira cloud"),
            jira_dc: JiraFake::start(&org, JiraFlavor::DataCenter)
                .await
                .expect("jira dc"),
        };
        f.github.add_token(GITHUB);
        f.github.set_app(FakeApp {
            app_id: 4242,
            installation_id: 77,
        });
        f.gitlab.add_token(GITLAB);
        f.kube.add_token(KUBE);
        f.pagerduty.add_token(PAGERDUTY);
        f.jira_cloud.add_token(JIRA_API);
        f.jira_dc.add_token(JIRA_PAT);
        f
    }

    /// Every API fails: 500s and 403s, as vendors do on a bad day.
    fn break_all(&self) {
        self.github
            .add_fault(Fault::new("graphql:repositories", FaultAction::Status(500)));
        self.github.add_fault(Fault::new(
            "rest:/orgs/acme/members",
            FaultAction::Status(403),
        ));
        self.gitlab
            .add_fault(Fault::new("*", FaultAction::Status(403)));
        self.kube
            .add_fault(Fault::new("*", FaultAction::Status(500)));
        self.pagerduty
            .add_fault(Fault::new("*", FaultAction::Status(403)));
        self.jira_cloud
            .add_fault(JiraFault::new("*", JiraFaultAction::Status(500)));
        self.jira_dc
            .add_fault(JiraFault::new("*", JiraFaultAction::Status(403)));
    }

    fn heal_all(&self) {
        self.github.clear_faults();
        self.gitlab.clear_faults();
        self.kube.clear_faults();
        self.pagerduty.clear_faults();
        self.jira_cloud.clear_faults();
        self.jira_dc.clear_faults();
    }
}

/// `surveyor.toml` with every credential as a `${ENV}` reference; the Kubernetes token lives in
/// the kubeconfig next to it, as kubeconfigs hold them.
fn write_config(dir: &Path, fakes: &Fakes, port: u16, otlp: &str) {
    write_kubeconfig(dir, fakes, KUBE);
    std::fs::write(dir.join("github-app.pem"), APP_KEY).expect("app key");
    // A yearly schedule: `serve` runs each connector at start-up and when triggered.
    let common = "schedule = \"0 0 1 1 *\"\nrun_on_start = true";
    let config = format!(
        r#"[catalog]
database = "${{SECRETS_TEST_DATABASE}}"

[server]
listen = "127.0.0.1:{port}"
read_tokens = ["${{SECRETS_TEST_READ}}"]
trigger_tokens = ["${{SECRETS_TEST_TRIGGER}}"]

[telemetry]
otlp_endpoint = "{otlp}"

[[connectors]]
id = "github"
kind = "github"
{common}
orgs = ["acme"]
token = "${{SECRETS_TEST_GITHUB}}"
api_url = "{github}"
max_retries = 1
requests_per_second = 1000

[[connectors]]
id = "github-app"
kind = "github"
{common}
orgs = ["acme"]
app_id = 4242
installation_id = 77
private_key_file = "github-app.pem"
api_url = "{github}"
max_retries = 1
requests_per_second = 1000

[[connectors]]
id = "gitlab"
kind = "gitlab"
{common}
groups = ["acme"]
token = "${{SECRETS_TEST_GITLAB}}"
url = "{gitlab}"
max_retries = 1
requests_per_second = 1000

[[connectors]]
id = "k8s"
kind = "kubernetes"
{common}
contexts = ["prod"]
kubeconfig = "kubeconfig"

[[connectors]]
id = "pagerduty"
kind = "pagerduty"
{common}
subdomain = "acme"
token = "${{SECRETS_TEST_PAGERDUTY}}"
api_url = "{pagerduty}"
max_retries = 1
requests_per_second = 1000

[[connectors]]
id = "jira"
kind = "jira"
{common}
url = "{jira_cloud}"
email = "{JIRA_EMAIL}"
api_token = "${{SECRETS_TEST_JIRA_API}}"
max_retries = 1
requests_per_second = 1000

[[connectors]]
id = "jira-dc"
kind = "jira"
{common}
url = "{jira_dc}"
flavor = "datacenter"
token = "${{SECRETS_TEST_JIRA_PAT}}"
max_retries = 1
requests_per_second = 1000
"#,
        github = fakes.github.url(),
        gitlab = fakes.gitlab.url(),
        pagerduty = fakes.pagerduty.url(),
        jira_cloud = fakes.jira_cloud.url(),
        jira_dc = fakes.jira_dc.url(),
    );
    std::fs::write(dir.join("surveyor.toml"), config).expect("config");
}

fn write_kubeconfig(dir: &Path, fakes: &Fakes, token: &str) {
    std::fs::write(
        dir.join("kubeconfig"),
        KubeFake::kubeconfig(&[("prod", fakes.kube.url())]).replace(KUBE_TOKEN, token),
    )
    .expect("kubeconfig");
}

const CONNECTORS: [&str; 7] = [
    "github",
    "github-app",
    "gitlab",
    "k8s",
    "pagerduty",
    "jira",
    "jira-dc",
];

fn surveyor(dir: &Path, env: &[(&str, String)], args: &[&str]) -> Output {
    surveyor_in(dir)
        .args(args)
        .env_remove("SURVEYOR_LOG")
        .envs(env.iter().map(|(k, v)| (k, v)))
        .output()
        .expect("run surveyor")
}

/// The log has lines from each library: trace logging reached them.
fn assert_traced(what: &str, log: &[u8], libraries: &[&str]) {
    let text = String::from_utf8_lossy(log);
    for library in libraries {
        assert!(
            text.contains(&format!("\"target\":\"{library}")),
            "{what}: no {library} lines in the log: {}",
            tail(log)
        );
    }
}

fn both(out: &Output) -> Vec<u8> {
    let mut all = out.stdout.clone();
    all.extend_from_slice(&out.stderr);
    all
}

fn tail(bytes: &[u8]) -> String {
    let text = String::from_utf8_lossy(bytes);
    let from = text.floor_char_boundary(text.len().saturating_sub(3000));
    text[from..].to_string()
}

// ---------------------------------------------------------------------------------------------
// Databases.

/// A catalog database for one backend, and how to dump all of it.
enum Database {
    Sqlite,
    Postgres { admin: String, name: String },
}

impl Database {
    fn all() -> Vec<Self> {
        let mut out = vec![Self::Sqlite];
        match std::env::var("SURVEYOR_TEST_DATABASE_URL") {
            Ok(admin) => out.push(Self::Postgres {
                admin,
                name: format!("surveyor_secrets_{}", std::process::id()),
            }),
            Err(_) => {
                eprintln!("Postgres half skipped: SURVEYOR_TEST_DATABASE_URL is not set")
            }
        }
        out
    }

    fn name(&self) -> &'static str {
        match self {
            Self::Sqlite => "sqlite",
            Self::Postgres { .. } => "postgres",
        }
    }

    /// `postgres://user@host:port/db` with `db` replaced by `name`.
    fn pg_url(admin: &str, name: &str, password: Option<&str>) -> String {
        let (scheme, rest) = admin.split_once("://").expect("a database URL");
        let (userinfo, host_db) = rest.split_once('@').expect("a user in the database URL");
        let (host, _) = host_db.split_once('/').unwrap_or((host_db, ""));
        let user = match password {
            // Keep an existing password; otherwise the sentinel (trust auth never asks).
            Some(p) if !userinfo.contains(':') => format!("{userinfo}:{p}"),
            _ => userinfo.to_string(),
        };
        format!("{scheme}://{user}@{host}/{name}")
    }

    fn psql(admin: &str, sql: &str) {
        let status = Command::new("psql")
            .args([admin, "-v", "ON_ERROR_STOP=1", "-qc", sql])
            .status();
        assert!(status.is_ok_and(|s| s.success()), "psql: {sql}");
    }

    /// Creates the database; the URL the config uses (with the sentinel password on Postgres).
    fn create(&self) -> String {
        match self {
            Self::Sqlite => "sqlite://catalog.db".into(),
            Self::Postgres { admin, name } => {
                Self::psql(admin, &format!("DROP DATABASE IF EXISTS {name}"));
                Self::psql(admin, &format!("CREATE DATABASE {name}"));
                Self::pg_url(admin, name, Some(DB_PASSWORD))
            }
        }
    }

    /// Every row of every table, as text, and the database files' raw bytes.
    fn dump(&self, dir: &Path) -> Vec<u8> {
        match self {
            Self::Sqlite => {
                let mut out = Vec::new();
                match Command::new("sqlite3")
                    .arg(dir.join("catalog.db"))
                    .arg(".dump")
                    .output()
                {
                    Ok(o) if o.status.success() => out.extend_from_slice(&o.stdout),
                    // Without the sqlite3 tool the raw bytes below still hold every text value
                    // (SQLite stores text uncompressed).
                    _ => eprintln!("sqlite3 not available: checking the raw database files"),
                }
                for suffix in ["", "-wal", "-shm"] {
                    if let Ok(bytes) = std::fs::read(dir.join(format!("catalog.db{suffix}"))) {
                        out.extend_from_slice(&bytes);
                    }
                }
                out
            }
            Self::Postgres { admin, name } => {
                let url = Self::pg_url(admin, name, None);
                let o = Command::new("pg_dump")
                    .args(["--no-owner", "--dbname", &url])
                    .output()
                    .expect("pg_dump (installed with psql)");
                assert!(o.status.success(), "pg_dump: {}", tail(&o.stderr));
                o.stdout
            }
        }
    }

    fn drop_it(&self) {
        if let Self::Postgres { admin, name } = self {
            Self::psql(admin, &format!("DROP DATABASE IF EXISTS {name}"));
        }
    }
}

// ---------------------------------------------------------------------------------------------
// The API client.

struct Api<'a> {
    rt: &'a tokio::runtime::Runtime,
    client: reqwest::Client,
    base: String,
    /// Every response body, for the leak check.
    seen: Vec<u8>,
    requests: usize,
}

impl Api<'_> {
    fn call(&mut self, method: &str, path: &str, token: Option<&str>) -> (u16, String) {
        let url = format!("{}{path}", self.base);
        let mut r = match method {
            "POST" => self.client.post(&url),
            _ => self.client.get(&url),
        };
        if let Some(t) = token {
            r = r.bearer_auth(t);
        }
        let (status, headers, body) = self.rt.block_on(async {
            let r = r.send().await.unwrap_or_else(|e| panic!("{url}: {e}"));
            let status = r.status().as_u16();
            let headers = format!("{:?}", r.headers());
            (status, headers, r.text().await.unwrap_or_default())
        });
        self.requests += 1;
        self.seen.extend_from_slice(headers.as_bytes());
        self.seen.extend_from_slice(body.as_bytes());
        (status, body)
    }

    fn get(&mut self, path: &str) -> Value {
        let (status, body) = self.call("GET", path, Some(READ));
        assert_eq!(status, 200, "GET {path}: {body}");
        serde_json::from_str(&body).unwrap_or(Value::String(body))
    }

    /// Every item of a paged `/api/v1` list.
    fn pages(&mut self, path: &str) -> Vec<Value> {
        let sep = if path.contains('?') { '&' } else { '?' };
        let mut out = Vec::new();
        let mut cursor = String::new();
        loop {
            let page = self.get(&format!("{path}{cursor}"));
            out.extend(page["items"].as_array().cloned().unwrap_or_default());
            match page["nextCursor"].as_str() {
                Some(c) => cursor = format!("{sep}cursor={c}"),
                None => return out,
            }
        }
    }
}

/// Polls until every connector has finished a run that started at or after `since`,
/// returning the connectors.
fn wait_for_runs(api: &mut Api, since: chrono::DateTime<chrono::Utc>) -> Vec<Value> {
    let deadline = Instant::now() + Duration::from_secs(120);
    loop {
        let items = api.get("/api/v1/connectors")["items"]
            .as_array()
            .cloned()
            .unwrap_or_default();
        // The latest run may be an earlier process's (the API reads runs from the database):
        // only runs started since count.
        let done = items.len() == CONNECTORS.len()
            && items.iter().all(|c| {
                c["running"] == false
                    && !c["lastStatus"].is_null()
                    && c["lastStarted"]
                        .as_str()
                        .and_then(|t| chrono::DateTime::parse_from_rfc3339(t).ok())
                        .is_some_and(|t| t >= since)
            });
        if done {
            return items;
        }
        assert!(Instant::now() < deadline, "runs did not finish: {items:?}");
        std::thread::sleep(Duration::from_millis(200));
    }
}

/// Reads every route the OpenAPI document lists (with a real entity and connector in its
/// placeholders), every entity with its graph, history and Backstage forms, and the rest.
fn walk(api: &mut Api) {
    let entities = api.pages("/api/v1/entities?include_deleted=true&limit=500");
    assert!(
        entities.len() > 50,
        "the catalog is populated: {}",
        entities.len()
    );
    for e in &entities {
        let r = e["surveyor"]["ref"].as_str().expect("ref");
        let (kind, rest) = r.split_once(':').expect("kind");
        let (ns, name) = rest.split_once('/').expect("namespace");
        api.get(&format!("/api/v1/entities/{kind}/{ns}/{name}"));
        api.get(&format!(
            "/api/v1/entities/{kind}/{ns}/{name}/graph?depth=2"
        ));
        api.get(&format!("/api/v1/changes?entity={r}&limit=1000"));
        // Backstage's by-name hides tombstones (404); its body is checked all the same.
        api.call(
            "GET",
            &format!("/api/catalog/entities/by-name/{kind}/{ns}/{name}"),
            Some(READ),
        );
    }
    api.pages("/api/v1/changes?limit=1000");
    api.get("/api/catalog/entities");
    api.get("/api/catalog/entities/by-query?limit=500");
    api.get("/api/catalog/entity-facets?facet=kind&facet=spec.owner&facet=metadata.annotations");
    let sample = entities
        .iter()
        .find(|e| e["kind"] == "Component" && e["surveyor"]["deletedAt"].is_null())
        .expect("a live component");
    let name = sample["metadata"]["name"]
        .as_str()
        .expect("name")
        .to_string();
    let doc = api.get("/openapi.json");
    let paths = doc["paths"].as_object().cloned().unwrap_or_default();
    assert!(paths.len() >= 10, "the OpenAPI document lists the routes");
    for (path, ops) in paths {
        if ops.get("get").is_none() {
            continue;
        }
        let concrete = path
            .replace("{kind}", "component")
            .replace("{namespace}", "default")
            .replace("{name}", &name)
            .replace("{id}", "github");
        let query = if concrete.ends_with("entity-facets") {
            "?facet=kind"
        } else {
            ""
        };
        // A route added later may want parameters this walk does not know: a 4xx is fine, its
        // body is checked all the same.
        let (status, body) = api.call("GET", &format!("{concrete}{query}"), Some(READ));
        assert!(status < 500, "GET {concrete}{query}: {status} {body}");
    }
    for path in ["/metrics", "/docs", "/healthz", "/readyz"] {
        let (status, _) = api.call("GET", path, Some(READ));
        assert_eq!(status, 200, "{path}");
    }
    // Refusals do not echo what was presented.
    for token in [None, Some(WRONG), Some(&format!("{READ}x") as &str)] {
        let (status, body) = api.call("GET", "/api/v1/entities", token);
        assert_eq!(status, 401, "{body}");
    }
    let (status, body) = api.call("POST", "/api/v1/connectors/github/sync", Some(READ));
    assert_eq!(status, 403, "{body}");
}

// ---------------------------------------------------------------------------------------------
// The scenario.

fn sync_reports(out: &Output) -> Vec<Value> {
    serde_json::from_slice::<Value>(&out.stdout)
        .ok()
        .and_then(|v| v.as_array().cloned())
        .unwrap_or_else(|| {
            panic!(
                "sync --format json printed no reports: {}",
                tail(&out.stderr)
            )
        })
}

struct Served {
    child: Child,
    stdout: PathBuf,
    stderr: PathBuf,
}

impl Served {
    fn start(dir: &Path, env: &[(&str, String)]) -> Self {
        let stdout = dir.join("serve.stdout");
        let stderr = dir.join("serve.stderr");
        // Files, not pipes: trace logs would fill a pipe nobody drains and stall the server.
        let child = surveyor_in(dir)
            .args(["serve", "--log", EVERYTHING, "--log-format", "json"])
            .env_remove("SURVEYOR_LOG")
            .envs(env.iter().map(|(k, v)| (k, v)))
            .stdout(Stdio::from(File::create(&stdout).expect("stdout file")))
            .stderr(Stdio::from(File::create(&stderr).expect("stderr file")))
            .spawn()
            .expect("spawn serve");
        Self {
            child,
            stdout,
            stderr,
        }
    }

    /// SIGTERM, the exit code, and stdout followed by stderr.
    fn stop(mut self) -> (Option<i32>, Vec<u8>) {
        let _ = Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status();
        let status = self.child.wait().expect("wait");
        let mut all = std::fs::read(&self.stdout).unwrap_or_default();
        all.extend(std::fs::read(&self.stderr).unwrap_or_default());
        (status.code(), all)
    }
}

fn wait_until_up(api: &mut Api, served: &mut Served) {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let up = api
            .rt
            .block_on(api.client.get(format!("{}/healthz", api.base)).send())
            .is_ok();
        if up {
            return;
        }
        if let Ok(Some(status)) = served.child.try_wait() {
            panic!(
                "serve exited with {status}: {}",
                tail(&std::fs::read(&served.stderr).unwrap_or_default())
            );
        }
        assert!(Instant::now() < deadline, "serve did not come up");
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// Every file under `dir` but the kubeconfig and the app key, which hold credentials by design.
fn files_left_behind(dir: &Path, out: &mut Vec<(PathBuf, Vec<u8>)>) {
    for entry in std::fs::read_dir(dir).expect("read dir").flatten() {
        let path = entry.path();
        if path.is_dir() {
            files_left_behind(&path, out);
        } else if path
            .file_name()
            .is_some_and(|n| n != "kubeconfig" && n != "github-app.pem")
        {
            out.push((path.clone(), std::fs::read(&path).unwrap_or_default()));
        }
    }
}

#[test]
fn sentinel_credentials_appear_nowhere() {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime");
    let fakes = rt.block_on(Fakes::start());
    for db in Database::all() {
        let b = db.name();
        let dir = tempfile::tempdir().expect("dir");
        let (otlp, exported) = collector();
        let port = free_port();
        write_config(dir.path(), &fakes, port, &otlp);
        let database = db.create();
        let env = good_env(&database);

        // validate, and a sync at trace level that every fake serves with the sentinels.
        let out = surveyor(
            dir.path(),
            &env,
            &["validate", "--log", "trace", "--log-format", "json"],
        );
        assert!(out.status.success(), "{b}: validate: {}", tail(&out.stderr));
        assert_clean(&format!("{b}: validate"), &both(&out));
        let out = surveyor(dir.path(), &env, TRACED_SYNC);
        let reports = sync_reports(&out);
        for r in &reports {
            assert_eq!(r["status"], "succeeded", "{b}: {r}\n{}", tail(&out.stderr));
            assert!(
                r["counts"]["observations"]["observed"].as_u64() > Some(0),
                "{b}: {r}"
            );
        }
        assert_eq!(reports.len(), CONNECTORS.len(), "{b}");
        assert!(
            fakes.github.stats().tokens_issued > 0,
            "{b}: the GitHub App minted installation tokens"
        );
        assert_clean(&format!("{b}: sync"), &both(&out));

        // `--log` takes filter directives too: the HTTP, TLS, database and Kubernetes client
        // libraries at trace level as well, where request headers would show if anything did.
        let out = surveyor(
            dir.path(),
            &env,
            &[
                "sync",
                "--log",
                EVERYTHING,
                "--log-format",
                "json",
                "--format",
                "json",
            ],
        );
        let reports = sync_reports(&out);
        assert!(
            reports.iter().all(|r| r["status"] == "succeeded"),
            "{b}: {reports:?}\n{}",
            tail(&out.stderr)
        );
        assert_traced(b, &out.stderr, &["hyper", "reqwest", "sqlx", "kube"]);
        assert_clean(
            &format!("{b}: sync with every library at trace"),
            &both(&out),
        );

        // Refused credentials: every source answers 401.
        write_kubeconfig(dir.path(), &fakes, &format!("{WRONG}kube"));
        let out = surveyor(dir.path(), &wrong_env(&database), TRACED_SYNC);
        assert_eq!(out.status.code(), Some(1), "{b}: {}", tail(&out.stderr));
        let reports = sync_reports(&out);
        // The GitHub App's key is a file, not a variable: only its connector still gets in.
        let refused: Vec<&str> = reports
            .iter()
            .filter(|r| r["status"] != "succeeded")
            .filter_map(|r| r["connector"].as_str())
            .collect();
        assert_eq!(
            refused.len(),
            CONNECTORS.len() - 1,
            "{b}: wrong tokens were refused: {reports:?}"
        );
        assert!(!refused.contains(&"github-app"), "{b}");
        write_kubeconfig(dir.path(), &fakes, KUBE);
        assert_clean(&format!("{b}: sync with refused credentials"), &both(&out));

        // Failing APIs: 500s and 403s with the right credentials.
        fakes.break_all();
        let out = surveyor(dir.path(), &env, TRACED_SYNC);
        fakes.heal_all();
        assert_eq!(out.status.code(), Some(1), "{b}: {}", tail(&out.stderr));
        let failed = sync_reports(&out)
            .iter()
            .filter(|r| r["status"] != "succeeded" || !r["error"].is_null())
            .count();
        assert!(failed >= 5, "{b}: the faults failed the runs");
        assert_clean(&format!("{b}: sync against failing APIs"), &both(&out));

        // The CLI's own views of what happened, errors included.
        for args in [
            &["runs", "--limit", "100"][..],
            &["runs", "--format", "json", "--limit", "100"],
            &["changes", "--format", "json"],
            &["entities", "list", "--format", "json"],
            &["audit", "drift", "--format", "json"],
        ] {
            let out = surveyor(dir.path(), &env, args);
            assert!(out.status.success(), "{b}: {args:?}: {}", tail(&out.stderr));
            assert_clean(&format!("{b}: surveyor {args:?}"), &both(&out));
        }

        // serve: runs at start-up, the API walked end to end, a run failing on request.
        let serve_started = chrono::Utc::now();
        let mut served = Served::start(dir.path(), &env);
        let mut api = Api {
            rt: &rt,
            client: reqwest::Client::new(),
            base: format!("http://127.0.0.1:{port}"),
            seen: Vec::new(),
            requests: 0,
        };
        wait_until_up(&mut api, &mut served);
        let started = wait_for_runs(&mut api, serve_started);
        assert!(
            started.iter().all(|c| c["lastStatus"] == "succeeded"),
            "{b}: start-up runs: {started:?}"
        );
        walk(&mut api);
        fakes.break_all();
        let triggered = chrono::Utc::now();
        for id in CONNECTORS {
            let (status, body) = api.call(
                "POST",
                &format!("/api/v1/connectors/{id}/sync"),
                Some(TRIGGER),
            );
            assert_eq!(status, 202, "{b}: trigger {id}: {body}");
        }
        let connectors = wait_for_runs(&mut api, triggered);
        fakes.heal_all();
        let failed = connectors
            .iter()
            .filter(|c| c["lastStatus"] != "succeeded")
            .count();
        assert!(
            failed >= 5,
            "{b}: the faults failed the runs: {connectors:?}"
        );
        walk(&mut api);
        let (status, metrics) = api.call("GET", "/metrics", Some(READ));
        assert_eq!(status, 200);
        assert!(metrics.contains("surveyor_runs_total"), "{b}: {metrics}");
        let (code, log) = served.stop();
        assert_eq!(code, Some(0), "{b}: serve exit: {}", tail(&log));
        assert_traced(b, &log, &["hyper", "reqwest", "sqlx", "kube"]);
        assert_clean(&format!("{b}: serve's logs"), &log);
        assert_clean(&format!("{b}: {} API responses", api.requests), &api.seen);

        // Spans exported over OTLP.
        let traces: Vec<u8> = exported
            .lock()
            .expect("lock")
            .iter()
            .flat_map(|r| r.raw.clone())
            .collect();
        assert!(!traces.is_empty(), "{b}: traces were exported");
        assert_clean(&format!("{b}: exported traces"), &traces);

        // The database, in full, and every file the runs left (caches included).
        let dump = db.dump(dir.path());
        assert!(
            String::from_utf8_lossy(&dump).contains("component:default/"),
            "{b}: the dump holds the catalog"
        );
        assert_clean(&format!("{b}: database dump"), &dump);
        let mut files = Vec::new();
        files_left_behind(dir.path(), &mut files);
        assert!(
            files
                .iter()
                .any(|(p, _)| p.to_string_lossy().contains(".surveyor-cache")),
            "{b}: the GitHub ETag cache is among the files checked"
        );
        for (path, bytes) in &files {
            assert_clean(&format!("{b}: {}", path.display()), bytes);
        }
        db.drop_it();
    }
}

/// What is wrong, the config, a kubeconfig to write beside it, and the environment.
type BrokenConfig = (
    &'static str,
    String,
    Option<String>,
    Vec<(&'static str, String)>,
);

/// Broken configurations that hold credentials: each is refused, and the message says where
/// without repeating the credential.
#[test]
fn config_errors_do_not_repeat_credentials() {
    let dir = tempfile::tempdir().expect("dir");
    let kubeconfig_with = |extra: &str| {
        format!(
            "apiVersion: v1\nkind: Config\nclusters:\n- name: prod\n  cluster:\n    server: http://127.0.0.1:1\n\
             users:\n- name: u\n  user:\n    token: {KUBE}\n{extra}contexts:\n- name: prod\n  context:\n    cluster: prod\n    user: u\n"
        )
    };
    let connector = |body: &str| {
        format!("[catalog]\ndatabase = \"sqlite://c.db\"\n\n[[connectors]]\nid = \"c\"\n{body}\n")
    };
    // A config that refers to one credential in the environment.
    let secret = |what, config, var: &'static str, value: &str| -> BrokenConfig {
        (what, config, None, vec![(var, value.to_string())])
    };
    let database = |what, url: String| {
        secret(
            what,
            "[catalog]\ndatabase = \"${SECRETS_TEST_DATABASE}\"\n".into(),
            "SECRETS_TEST_DATABASE",
            &url,
        )
    };
    // A config (or the kubeconfig beside it) that holds its credential as written.
    let literal = |what, config, kubeconfig| -> BrokenConfig { (what, config, kubeconfig, vec![]) };
    let cases: Vec<BrokenConfig> = vec![
        secret(
            "a secret in a key that does not exist",
            connector("kind = \"github\"\norgs = [\"acme\"]\ntokn = \"${SECRETS_TEST_GITHUB}\""),
            "SECRETS_TEST_GITHUB",
            GITHUB,
        ),
        secret(
            "a secret where a number belongs",
            connector(
                "kind = \"github\"\norgs = [\"acme\"]\ntoken = \"${SECRETS_TEST_GITHUB}\"\nmax_retries = \"${SECRETS_TEST_GITHUB}\"",
            ),
            "SECRETS_TEST_GITHUB",
            GITHUB,
        ),
        secret(
            "a secret as a URL",
            connector(
                "kind = \"gitlab\"\ngroups = [\"acme\"]\ntoken = \"${SECRETS_TEST_GITLAB}\"\nurl = \"${SECRETS_TEST_GITLAB}\"",
            ),
            "SECRETS_TEST_GITLAB",
            GITLAB,
        ),
        secret(
            "a Jira Cloud site without its email",
            connector(
                "kind = \"jira\"\nurl = \"http://127.0.0.1:1\"\napi_token = \"${SECRETS_TEST_JIRA_API}\"",
            ),
            "SECRETS_TEST_JIRA_API",
            JIRA_API,
        ),
        secret(
            "a PagerDuty token with a bad api_url",
            connector(
                "kind = \"pagerduty\"\nsubdomain = \"acme\"\ntoken = \"${SECRETS_TEST_PAGERDUTY}\"\napi_url = \"not a url\"",
            ),
            "SECRETS_TEST_PAGERDUTY",
            PAGERDUTY,
        ),
        database(
            "an unsupported database URL with a password",
            format!("mysql://root:{DB_PASSWORD}@db.example/catalog"),
        ),
        database(
            "a database URL with a password and a bad port",
            format!("postgres://root:{DB_PASSWORD}@127.0.0.1:notaport/catalog"),
        ),
        database(
            "a database that does not answer",
            format!("postgres://root:{DB_PASSWORD}@127.0.0.1:1/catalog?connect_timeout=2"),
        ),
        literal(
            "a literal token in an unterminated string",
            connector(&format!(
                "kind = \"github\"\norgs = [\"acme\"]\ntoken = \"{GITHUB}\nmax_retries = 1"
            )),
            None,
        ),
        literal(
            "a literal token followed by garbage",
            connector(&format!(
                "kind = \"github\"\norgs = [\"acme\"]\ntoken = \"{GITHUB}\" x"
            )),
            None,
        ),
        literal(
            "a literal token in a list",
            connector(&format!(
                "kind = \"pagerduty\"\nsubdomain = \"acme\"\ntoken = [\"{PAGERDUTY}\"]"
            )),
            None,
        ),
        secret(
            "read tokens that are not all strings",
            "[catalog]\ndatabase = \"sqlite://c.db\"\n\n[server]\nread_tokens = [\"${SECRETS_TEST_READ}\", 5]\n"
                .to_string(),
            "SECRETS_TEST_READ",
            READ,
        ),
        literal(
            "a kubeconfig without the context",
            connector(
                "kind = \"kubernetes\"\ncontexts = [\"staging\"]\nkubeconfig = \"kubeconfig\"",
            ),
            Some(kubeconfig_with("")),
        ),
        literal(
            "a kubeconfig that is not YAML",
            connector("kind = \"kubernetes\"\ncontexts = [\"prod\"]\nkubeconfig = \"kubeconfig\""),
            Some(kubeconfig_with("  broken: [unclosed\n")),
        ),
    ];
    for (what, config, kubeconfig, env) in cases {
        std::fs::write(dir.path().join("surveyor.toml"), &config).expect("config");
        if let Some(k) = &kubeconfig {
            std::fs::write(dir.path().join("kubeconfig"), k).expect("kubeconfig");
        }
        for command in [&["validate"][..], &["sync"]] {
            let mut args = command.to_vec();
            args.extend(["--log", "trace", "--log-format", "json"]);
            let out = surveyor(dir.path(), &env, &args);
            // `validate` may pass what only a connection finds wrong (it reports a database
            // that does not answer, but a later key may be the broken one); `sync` must refuse
            // every case.
            assert!(
                !out.status.success() || command == ["validate"],
                "{what}: {command:?} was accepted: {}",
                tail(&out.stderr)
            );
            assert!(
                out.status.success() || !out.stderr.is_empty(),
                "{what}: the refusal says why"
            );
            assert_clean(&format!("{what} ({command:?})"), &both(&out));
        }
    }
}

/// No panic hook is installed (the default one prints the message and location only), so a
/// panic could show a credential only by formatting one: the parsed configuration and every
/// connector's options format their secrets as `***`.
#[test]
fn configuration_debug_output_hides_secrets() {
    use surveyor_connector_github as github;
    use surveyor_connector_gitlab as gitlab;
    use surveyor_connector_jira as jira;
    use surveyor_connector_pagerduty as pagerduty;
    use surveyor_engine::config::{Config, KindSpec};
    let kinds = [
        KindSpec::of::<github::GithubConnector>(),
        KindSpec::of::<gitlab::GitlabConnector>(),
        KindSpec::of::<pagerduty::PagerDutyConnector>(),
        KindSpec::of::<jira::JiraConnector>(),
    ];
    // Literal values: a config someone wrote without `${ENV}` references.
    let text = format!(
        "[catalog]\ndatabase = \"postgres://u:{DB_PASSWORD}@127.0.0.1/db\"\n\n[server]\nread_tokens = [\"{READ}\"]\ntrigger_tokens = [\"{TRIGGER}\"]\n\n\
         [[connectors]]\nid = \"gh\"\nkind = \"github\"\norgs = [\"acme\"]\ntoken = \"{GITHUB}\"\n\n\
         [[connectors]]\nid = \"gl\"\nkind = \"gitlab\"\ngroups = [\"acme\"]\ntoken = \"{GITLAB}\"\n\n\
         [[connectors]]\nid = \"pd\"\nkind = \"pagerduty\"\nsubdomain = \"acme\"\ntoken = \"{PAGERDUTY}\"\n\n\
         [[connectors]]\nid = \"jira\"\nkind = \"jira\"\nurl = \"https://acme.example\"\nemail = \"{JIRA_EMAIL}\"\napi_token = \"{JIRA_API}\"\n\n\
         [[connectors]]\nid = \"jira-dc\"\nkind = \"jira\"\nflavor = \"datacenter\"\nurl = \"https://jira.example\"\ntoken = \"{JIRA_PAT}\"\n"
    );
    let config = Config::parse(&text, Path::new("surveyor.toml"), &kinds).expect("parses");
    let mut shown = format!("{config:?}\n{:?}\n", config.database_url());
    for spec in &config.connectors {
        let options = match spec.kind.as_str() {
            "github" => format!("{:?}", spec.options::<github::GithubConfig>()),
            "gitlab" => format!("{:?}", spec.options::<gitlab::GitlabConfig>()),
            "pagerduty" => format!("{:?}", spec.options::<pagerduty::PagerDutyConfig>()),
            _ => format!("{:?}", spec.options::<jira::JiraConfig>()),
        };
        assert!(options.starts_with("Ok("), "{}: {options}", spec.id);
        shown.push_str(&options);
    }
    assert!(shown.contains("***"), "secrets are shown as ***: {shown}");
    assert_clean("Debug of the configuration", shown.as_bytes());
}

/// Credentials inside a connector's URL come from the environment and are hidden wherever the
/// URL is shown: validate's errors, the run's errors and logs, the database.
#[test]
fn credentials_inside_urls_appear_nowhere() {
    let dir = tempfile::tempdir().expect("dir");
    // Nothing listens there: every request fails, and its error names the URL.
    let closed = free_port();
    let config = format!(
        r#"[catalog]
database = "sqlite://catalog.db"

[[connectors]]
id = "github"
kind = "github"
orgs = ["acme"]
token = "${{SECRETS_TEST_GITHUB}}"
api_url = "http://proxy:${{SECRETS_TEST_URL_PASSWORD}}@127.0.0.1:{closed}"
max_retries = 0

[[connectors]]
id = "pagerduty"
kind = "pagerduty"
subdomain = "acme"
token = "${{SECRETS_TEST_PAGERDUTY}}"
api_url = "http://proxy:${{SECRETS_TEST_URL_PASSWORD}}@127.0.0.1:{closed}/pd"
max_retries = 0
"#
    );
    std::fs::write(dir.path().join("surveyor.toml"), &config).expect("config");
    let env = vec![
        ("SECRETS_TEST_GITHUB", GITHUB.to_string()),
        ("SECRETS_TEST_PAGERDUTY", PAGERDUTY.to_string()),
        ("SECRETS_TEST_URL_PASSWORD", URL_PASSWORD.to_string()),
        ("NO_COLOR", "1".to_string()),
    ];
    let out = surveyor(dir.path(), &env, &["validate"]);
    assert!(out.status.success(), "validate: {}", tail(&out.stderr));
    assert_clean("validate", &both(&out));
    let out = surveyor(dir.path(), &env, TRACED_SYNC);
    assert_eq!(out.status.code(), Some(1), "{}", tail(&out.stderr));
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.contains("http://***@127.0.0.1"),
        "the error shows where, without the credentials: {text}"
    );
    assert_clean("sync", &both(&out));
    let out = surveyor(dir.path(), &env, &["runs", "--format", "json"]);
    assert_clean("runs", &both(&out));
    let mut files = Vec::new();
    files_left_behind(dir.path(), &mut files);
    for (path, bytes) in files {
        if path.file_name().is_some_and(|n| n != "surveyor.toml") {
            assert_clean(&path.display().to_string(), &bytes);
        }
    }

    // A URL validate refuses is not repeated with its credentials either.
    std::fs::write(
        dir.path().join("surveyor.toml"),
        config.replace("http://proxy:", "ftp://proxy:"),
    )
    .expect("config");
    let out = surveyor(dir.path(), &env, &["validate"]);
    assert_eq!(out.status.code(), Some(2), "{}", tail(&out.stderr));
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("api_url: is not an http(s) URL"),
        "{}",
        tail(&out.stderr)
    );
    assert_clean("validate of a refused URL", &both(&out));

    // A password with a `/` that was not percent-encoded makes a URL whose host cannot be told
    // from its password: refused, and not repeated.
    std::fs::write(dir.path().join("surveyor.toml"), &config).expect("config");
    let mut env = env;
    env.retain(|(k, _)| *k != "SECRETS_TEST_URL_PASSWORD");
    env.push(("SECRETS_TEST_URL_PASSWORD", format!("{URL_PASSWORD}/x=@y")));
    let out = surveyor(dir.path(), &env, &["validate"]);
    assert_eq!(out.status.code(), Some(2), "{}", tail(&out.stderr));
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("must be percent-encoded"),
        "{}",
        tail(&out.stderr)
    );
    assert_clean("validate of a malformed URL", &both(&out));
}
