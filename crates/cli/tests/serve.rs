//! `surveyor serve` as a process: it syncs on schedule, answers the API, triggers on request,
//! stops cleanly on SIGTERM — and two replicas on one Postgres run each tick exactly once.

mod common;

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use common::free_port;
use serde_json::Value;

fn write_catalog(dir: &Path) {
    std::fs::create_dir_all(dir.join("catalog")).expect("dir");
    for name in ["alpha", "beta"] {
        std::fs::write(
            dir.join(format!("catalog/{name}.yaml")),
            format!(
                "apiVersion: backstage.io/v1alpha1\nkind: Component\nmetadata:\n  name: {name}\nspec:\n  type: service\n  lifecycle: production\n  owner: team-a\n"
            ),
        )
        .expect("write");
    }
}

fn config(dir: &Path, database: &str, port: u16, schedule: &str, extra: &str) {
    std::fs::write(
        dir.join("surveyor.toml"),
        format!(
            "[catalog]\ndatabase = \"{database}\"\n\n[server]\nlisten = \"127.0.0.1:{port}\"\n{extra}\n\n\
             [[connectors]]\nid = \"files\"\nkind = \"file\"\nschedule = \"{schedule}\"\npaths = [\"catalog/*.yaml\"]\n"
        ),
    )
    .expect("config");
}

struct Served {
    child: Child,
    base: String,
}

impl Served {
    fn start(dir: &Path, port: u16, envs: &[(&str, &str)]) -> Self {
        let child = common::surveyor_in(dir)
            .args(["serve", "--log", "info"])
            .envs(envs.iter().copied())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn");
        let base = format!("http://127.0.0.1:{port}");
        let deadline = Instant::now() + Duration::from_secs(30);
        while Instant::now() < deadline {
            if reqwest::blocking_get(&format!("{base}/healthz")).is_some() {
                return Self { child, base };
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        let mut child = child;
        let _ = child.kill();
        let _ = child.wait();
        panic!("surveyor serve did not come up on {base}");
    }

    /// SIGTERM, then the exit status and everything it wrote to stderr.
    fn stop(mut self) -> (Option<i32>, String) {
        let _ = Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status();
        let status = self.child.wait().expect("wait");
        let mut log = String::new();
        if let Some(err) = self.child.stderr.take() {
            for line in BufReader::new(err).lines().map_while(Result::ok) {
                log.push_str(&line);
                log.push('\n');
            }
        }
        (status.code(), log)
    }
}

/// A tiny blocking HTTP client over reqwest's async one, for a test without a runtime.
mod reqwest {
    pub fn blocking_get(url: &str) -> Option<(u16, String)> {
        request("GET", url, None)
    }

    pub fn request(method: &str, url: &str, token: Option<&str>) -> Option<(u16, String)> {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .ok()?;
        rt.block_on(async {
            let client = ::reqwest::Client::new();
            let mut r = match method {
                "POST" => client.post(url),
                _ => client.get(url),
            };
            if let Some(t) = token {
                r = r.bearer_auth(t);
            }
            let r = r.send().await.ok()?;
            let status = r.status().as_u16();
            Some((status, r.text().await.ok()?))
        })
    }
}

fn get_json(url: &str) -> Value {
    let (status, body) = reqwest::blocking_get(url).expect("request");
    assert_eq!(status, 200, "{url}: {body}");
    serde_json::from_str(&body).expect("json")
}

#[test]
fn serve_syncs_on_schedule_answers_and_stops_cleanly() {
    let dir = tempfile::tempdir().expect("dir");
    write_catalog(dir.path());
    let port = free_port();
    config(
        dir.path(),
        "sqlite://catalog.db",
        port,
        "*/2 * * * * *",
        "trigger_tokens = [\"${SERVE_TEST_TOKEN}\"]",
    );
    // The token comes from the environment, as secrets do.
    let served = Served::start(dir.path(), port, &[("SERVE_TEST_TOKEN", "s3cret-token")]);
    let base = served.base.clone();
    // Within a few ticks the schedule has synced the two descriptors.
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let page = get_json(&format!("{base}/api/v1/entities?kind=component&total=true"));
        if page["totalItems"] == 2 {
            break;
        }
        assert!(Instant::now() < deadline, "no scheduled sync: {page}");
        std::thread::sleep(Duration::from_millis(200));
    }
    let connectors = get_json(&format!("{base}/api/v1/connectors"));
    assert_eq!(connectors["items"][0]["id"], "files");
    assert!(connectors["items"][0]["nextRun"].is_string());
    let (status, _) = reqwest::request(
        "POST",
        &format!("{base}/api/v1/connectors/files/sync"),
        None,
    )
    .expect("post");
    assert_eq!(status, 401, "triggering needs the token");
    let (status, body) = reqwest::request(
        "POST",
        &format!("{base}/api/v1/connectors/files/sync"),
        Some("s3cret-token"),
    )
    .expect("post");
    assert!(status == 202 || status == 409, "{status}: {body}");
    let metrics = reqwest::blocking_get(&format!("{base}/metrics"))
        .expect("metrics")
        .1;
    assert!(
        metrics.contains("surveyor_runs_total{connector=\"files\""),
        "{metrics}"
    );
    let (code, log) = served.stop();
    assert_eq!(code, Some(0), "{log}");
    assert!(log.contains("stopped"), "{log}");
    assert!(
        !log.contains("s3cret-token"),
        "the token never reaches the log"
    );
}

#[test]
fn two_replicas_on_postgres_run_each_tick_once() {
    let Ok(url) = std::env::var("SURVEYOR_TEST_DATABASE_URL") else {
        eprintln!("skipped: SURVEYOR_TEST_DATABASE_URL is not set (CI sets it)");
        return;
    };
    // A database of its own (dropped at the end), so runs from other tests do not count.
    let db = format!("surveyor_replicas_{}", std::process::id());
    let admin = |sql: &str| {
        let status = Command::new("psql")
            .args([url.as_str(), "-v", "ON_ERROR_STOP=1", "-qc", sql])
            .status();
        assert!(status.is_ok_and(|s| s.success()), "psql: {sql}");
    };
    admin(&format!("DROP DATABASE IF EXISTS {db}"));
    admin(&format!("CREATE DATABASE {db}"));
    let (base_url, _) = url.rsplit_once('/').expect("a database URL");
    let database = format!("{base_url}/{db}");

    let dirs: Vec<tempfile::TempDir> = (0..2).map(|_| tempfile::tempdir().expect("dir")).collect();
    let mut replicas = Vec::new();
    for d in &dirs {
        write_catalog(d.path());
        let port = free_port();
        config(d.path(), &database, port, "* * * * * *", "");
        replicas.push(Served::start(d.path(), port, &[]));
    }
    std::thread::sleep(Duration::from_secs(6));
    let runs = get_json(&format!("{}/api/v1/runs?limit=1000", replicas[0].base));
    for r in replicas {
        let (code, log) = r.stop();
        assert_eq!(code, Some(0), "{log}");
    }
    let starts: Vec<String> = runs["items"]
        .as_array()
        .expect("runs")
        .iter()
        .map(|r| r["startedAt"].as_str().unwrap_or_default()[..19].to_string())
        .collect();
    let mut unique = starts.clone();
    unique.sort();
    unique.dedup();
    admin(&format!("DROP DATABASE IF EXISTS {db}"));
    assert!(starts.len() >= 3, "ticks ran: {starts:?}");
    assert_eq!(
        unique.len(),
        starts.len(),
        "one run per tick, not one per replica: {starts:?}"
    );
}

/// SIGTERM while a crawl waits on a vendor API that never answers: the crawl gets
/// `shutdown_grace`, is rolled back, and the process exits within it — not after the request's
/// own timeout or the connector's.
#[test]
fn sigterm_during_a_crawl_that_never_ends_exits_within_the_grace() {
    let dir = tempfile::tempdir().expect("dir");
    // Accepts connections and never answers them.
    let black_hole = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let hole = black_hole.local_addr().expect("addr");
    let held = std::thread::spawn(move || {
        let mut open = Vec::new();
        for s in black_hole.incoming().take(16).flatten() {
            open.push(s);
        }
        std::thread::sleep(Duration::from_secs(120));
        drop(open);
    });
    let port = free_port();
    std::fs::write(
        dir.path().join("surveyor.toml"),
        format!(
            "[catalog]\ndatabase = \"sqlite://catalog.db\"\n\n[server]\nlisten = \"127.0.0.1:{port}\"\nshutdown_grace = \"1s\"\n\n\
             [[connectors]]\nid = \"gh\"\nkind = \"github\"\nschedule = \"0 0 1 1 *\"\nrun_on_start = true\ntimeout = \"1h\"\n\
             orgs = [\"acme\"]\ntoken = \"${{SERVE_TEST_TOKEN}}\"\napi_url = \"http://{hole}\"\ntimeout_secs = 600\n"
        ),
    )
    .expect("config");
    let served = Served::start(dir.path(), port, &[("SERVE_TEST_TOKEN", "t")]);
    // Wait until the crawl is under way.
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let c = get_json(&format!("{}/api/v1/connectors", served.base));
        if c["items"][0]["running"] == true {
            break;
        }
        assert!(Instant::now() < deadline, "the crawl never started: {c}");
        std::thread::sleep(Duration::from_millis(100));
    }
    let asked = Instant::now();
    let (code, log) = served.stop();
    let took = asked.elapsed();
    assert_eq!(code, Some(0), "{log}");
    assert!(
        took < Duration::from_secs(15),
        "stopping took {took:?} with a 1 s grace: {log}"
    );
    assert!(log.contains("abandoned: shutting down"), "{log}");
    drop(held);
}

/// One answer off a kept-alive connection (the API sends `Content-Length`): its status.
fn answer(s: &mut std::net::TcpStream) -> u16 {
    use std::io::Read;
    let mut bytes = Vec::new();
    let mut chunk = [0u8; 4096];
    loop {
        let text = String::from_utf8_lossy(&bytes).to_ascii_lowercase();
        if let Some((head, body)) = text.split_once("\r\n\r\n") {
            let length = head
                .lines()
                .find_map(|l| l.strip_prefix("content-length:"))
                .and_then(|v| v.trim().parse::<usize>().ok());
            if length.is_some_and(|n| body.len() >= n) {
                return head
                    .split(' ')
                    .nth(1)
                    .and_then(|s| s.parse().ok())
                    .unwrap_or(0);
            }
        }
        match s.read(&mut chunk) {
            Ok(0) | Err(_) => panic!("no answer: {text:?}"),
            Ok(n) => bytes.extend_from_slice(&chunk[..n]),
        }
    }
}

/// Whether the server closed the connection within the read timeout set on it.
fn closed(s: &mut std::net::TcpStream) -> bool {
    use std::io::Read;
    let mut sink = [0u8; 1024];
    loop {
        match s.read(&mut sink) {
            Ok(0) => return true,
            Ok(_) => {}
            Err(e) => {
                return !matches!(
                    e.kind(),
                    std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                );
            }
        }
    }
}

#[test]
fn serve_applies_the_server_limits_and_stops_with_a_header_half_sent() {
    use std::io::Write;
    use std::net::TcpStream;
    let dir = tempfile::tempdir().expect("dir");
    write_catalog(dir.path());
    let port = free_port();
    // Once a year: no sync gets in the way.
    config(
        dir.path(),
        "sqlite://catalog.db",
        port,
        "0 0 1 1 *",
        "idle_timeout = \"1s\"\nheader_read_timeout = \"1m\"\nmax_connections = 7\nmax_expensive_requests = 1",
    );
    let served = Served::start(dir.path(), port, &[]);
    let bound = Some(Duration::from_secs(10));
    // A kept-alive connection left idle is closed after idle_timeout.
    let mut idle = TcpStream::connect(("127.0.0.1", port)).expect("connect");
    idle.set_read_timeout(bound).expect("timeout");
    idle.write_all(b"GET /healthz HTTP/1.1\r\nHost: test\r\n\r\n")
        .expect("write");
    assert_eq!(answer(&mut idle), 200);
    assert!(closed(&mut idle), "open 10 s after a 1 s idle timeout");
    let metrics = get_json_text(&format!("{}/metrics", served.base));
    for line in [
        "surveyor_api_connections_max 7",
        "surveyor_api_connections_timed_out_total{reason=\"idle\"} 1",
    ] {
        assert!(metrics.lines().any(|l| l == line), "{line}: {metrics}");
    }
    // A header half sent (the header timeout is a minute) does not hold up a stop.
    let mut half = TcpStream::connect(("127.0.0.1", port)).expect("connect");
    half.set_read_timeout(bound).expect("timeout");
    half.write_all(b"GET /healthz HTTP/1.1\r\nHost: te")
        .expect("write");
    std::thread::sleep(Duration::from_millis(300));
    let pid = served.child.id();
    let stopping = std::thread::spawn(move || served.stop());
    assert!(closed(&mut half), "the half-sent header is closed on stop");
    let deadline = Instant::now() + Duration::from_secs(20);
    while !stopping.is_finished() {
        if Instant::now() > deadline {
            let _ = Command::new("kill")
                .args(["-KILL", &pid.to_string()])
                .status();
            panic!("serve did not stop within 20 s with a header half sent");
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    let (code, log) = stopping.join().expect("stop");
    assert_eq!(code, Some(0), "{log}");
    assert!(log.contains("stopped"), "{log}");
}

fn get_json_text(url: &str) -> String {
    let (status, body) = reqwest::blocking_get(url).expect("request");
    assert_eq!(status, 200, "{url}: {body}");
    body
}
