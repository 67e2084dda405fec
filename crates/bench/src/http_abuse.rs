//! The `http-abuse` scenario: what hostile or careless clients do to the API server, measured
//! on a server in a child process (so its open-file limit and peak RSS are its own):
//!
//! - **slowloris**: N connections that send nothing and N that send a header a line at a time,
//!   held for the header-read timeout plus a margin: how many the server has closed by then,
//!   and how `/healthz` answers meanwhile (the server's open-file limit can be set lower than
//!   2N with `--nofile`);
//! - **heavy mix**: many clients on expensive Backstage queries (a filter only memory can
//!   match, entity facets, `orderField`): latency, 503s, requests/s and the server's peak RSS.
//!
//! `--plain` serves with `axum::serve` and no limit on expensive requests: the server as it was
//! before the bounds, for before/after figures from the same program.

use std::io::{BufRead, BufReader, Read, Write};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use anyhow::Context;
use serde::Serialize;
use surveyor_engine::{ReconcileOptions, run_connector};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use crate::db::{self, Backend};
use crate::generated::Generated;
use crate::machine::load_average;
use crate::report::{Outcome, Table, fmt_int, percentile_ms, round};

#[derive(Serialize, clap::Args)]
pub struct HttpAbuseBench {
    /// Entities in the catalog (generated components)
    #[arg(long, default_value_t = 6000)]
    pub entities: usize,
    /// Slowloris: connections that send nothing, and as many that send a header a line at a
    /// time
    #[arg(long, default_value_t = 150)]
    pub connections: usize,
    /// The server's open-file limit (`ulimit -n` in its process); 0 keeps this one's
    #[arg(long, default_value_t = 0)]
    pub nofile: u64,
    /// Seconds the slowloris connections are held past the header-read timeout
    #[arg(long, default_value_t = 5)]
    pub margin: u64,
    /// The server's header-read timeout, in seconds (not used with --plain)
    #[arg(long, default_value_t = 10)]
    pub header_read_timeout: u64,
    /// Heavy mix: concurrent clients
    #[arg(long, default_value_t = 32)]
    pub clients: usize,
    /// Heavy mix: seconds
    #[arg(long, default_value_t = 20)]
    pub seconds: u64,
    /// Serve as before the bounds: `axum::serve`, no limit on expensive requests
    #[arg(long)]
    pub plain: bool,
    #[arg(long)]
    pub no_slowloris: bool,
    #[arg(long)]
    pub no_heavy: bool,
    /// Internal: be the server (the scenario starts itself with it)
    #[arg(long, hide = true)]
    #[serde(skip)]
    pub serve: bool,
}

/// The expensive Backstage queries of the heavy mix: a filter the store cannot evaluate (so
/// every entity is read and matched in memory), facets over every entity, and a sort.
pub const HEAVY: [(&str, &str); 3] = [
    (
        "filter spec.type",
        "/api/catalog/entities?filter=spec.type=service&limit=20",
    ),
    (
        "entity-facets",
        "/api/catalog/entity-facets?facet=spec.type&facet=metadata.tags",
    ),
    (
        "orderField",
        "/api/catalog/entities/by-query?orderField=metadata.name,desc&limit=20",
    ),
];

/// The server side: seeds a catalog, serves it, prints where, stops when stdin closes.
pub async fn child_main(b: &HttpAbuseBench) -> anyhow::Result<()> {
    let (store, cleanup) = db::open_fresh(Backend::Sqlite, None).await?;
    let seed = Generated {
        labels: true,
        ..Generated::new(b.entities, 0)
    };
    run_connector(&store, &seed, &ReconcileOptions::default())
        .await
        .context("seeding the catalog")?;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let addr = listener.local_addr()?;
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    // The parent closes our stdin to stop us.
    std::thread::spawn(move || {
        let _ = std::io::stdin().read_to_end(&mut Vec::new());
        let _ = stop.send(());
    });
    let shutdown = async move {
        let _ = stopped.await;
    };
    let (server, described) = if b.plain {
        let config = surveyor_api::ApiConfig {
            max_expensive_requests: None,
            ..surveyor_api::ApiConfig::default()
        };
        let app = surveyor_api::router(store.clone(), config, None);
        let server = tokio::spawn(async move {
            axum::serve(listener, app)
                .with_graceful_shutdown(shutdown)
                .await
        });
        (server, "axum::serve, no limits".to_string())
    } else {
        let options = surveyor_api::ServeOptions {
            header_read_timeout: Duration::from_secs(b.header_read_timeout),
            ..surveyor_api::ServeOptions::default()
        };
        let config = surveyor_api::ApiConfig {
            body_read_timeout: options.header_read_timeout,
            ..surveyor_api::ApiConfig::default()
        };
        let described = format!(
            "serve_with: header_read_timeout {} s, idle_timeout {} s, max_connections {}, max_expensive_requests {}",
            options.header_read_timeout.as_secs(),
            options.idle_timeout.as_secs(),
            options.max_connections,
            config.max_expensive_requests.unwrap_or(0)
        );
        let app = surveyor_api::router(store.clone(), config, None);
        let server = tokio::spawn(surveyor_api::serve_with(listener, app, options, shutdown));
        (server, described)
    };
    println!("LISTENING {addr} {described}");
    std::io::stdout().flush()?;
    server.await??;
    store.close().await;
    cleanup.run().await;
    Ok(())
}

/// The server process, and where it listens.
struct Server {
    child: Child,
    addr: String,
    described: String,
}

impl Server {
    fn start(b: &HttpAbuseBench) -> anyhow::Result<Self> {
        let exe = std::env::current_exe()?;
        let mut args = vec![
            "http-abuse".to_string(),
            "--serve".into(),
            "--entities".into(),
            b.entities.to_string(),
            "--header-read-timeout".into(),
            b.header_read_timeout.to_string(),
        ];
        if b.plain {
            args.push("--plain".into());
        }
        let mut cmd = if b.nofile > 0 {
            // The shell sets the limit for the process it becomes.
            let mut c = Command::new("sh");
            c.arg("-c")
                .arg(format!("ulimit -n {} && exec \"$0\" \"$@\"", b.nofile))
                .arg(exe)
                .args(&args);
            c
        } else {
            let mut c = Command::new(exe);
            c.args(&args);
            c
        };
        let mut child = cmd
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .context("starting the server process")?;
        let stdout = child.stdout.take().context("the server's stdout")?;
        let mut line = String::new();
        BufReader::new(stdout).read_line(&mut line)?;
        let Some(rest) = line.trim().strip_prefix("LISTENING ") else {
            let _ = child.kill();
            anyhow::bail!("the server did not start: {line:?}");
        };
        let (addr, described) = rest.split_once(' ').unwrap_or((rest, ""));
        Ok(Self {
            addr: addr.to_string(),
            described: described.to_string(),
            child,
        })
    }

    fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Closes its stdin (it drains and exits); killed if it has not after `bound`.
    fn stop(mut self, bound: Duration) -> anyhow::Result<f64> {
        let started = Instant::now();
        drop(self.child.stdin.take());
        while started.elapsed() < bound {
            if self.child.try_wait()?.is_some() {
                return Ok(started.elapsed().as_secs_f64());
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
        Ok(f64::NAN)
    }
}

/// A field of /proc/<pid>/status, in MB.
fn status_mb(pid: u32, field: &str) -> f64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with(field))?
                .split_whitespace()
                .nth(1)?
                .parse::<f64>()
                .ok()
        })
        .map_or(f64::NAN, |kb| kb / 1024.0)
}

#[derive(Serialize, Default)]
struct Probe {
    /// Seconds after the slow connections were opened.
    at_s: f64,
    status: Option<u16>,
    latency_ms: f64,
    error: Option<String>,
}

#[derive(Serialize)]
struct Slowloris {
    connections: usize,
    connected: usize,
    /// Held this long after they were opened.
    held_s: f64,
    silent_open_at_end: usize,
    half_header_open_at_end: usize,
    /// Closed by the server within a second of being opened (refused at the cap).
    closed_at_once: usize,
    /// Median seconds to the server's close, of those it closed later.
    median_close_s: f64,
    probes: Vec<Probe>,
    load_average: Option<[f64; 3]>,
    server_open_files_limit: u64,
}

#[derive(Serialize, Clone)]
struct Figures {
    requests: usize,
    ok: usize,
    overloaded: usize,
    errors: usize,
    requests_per_s: f64,
    ok_per_s: f64,
    p50_ok_ms: f64,
    p95_ok_ms: f64,
    p50_all_ms: f64,
    p95_all_ms: f64,
    error_examples: Vec<String>,
}

#[derive(Serialize)]
struct Heavy {
    clients: usize,
    seconds: f64,
    all: Figures,
    by_query: Vec<(String, Figures)>,
    rss_before_mb: f64,
    peak_rss_mb: f64,
    /// Whether the peak counts this phase only (the kernel allowed resetting it).
    peak_reset: bool,
    load_average: Option<[f64; 3]>,
}

#[derive(Serialize)]
struct Results {
    server: String,
    slowloris: Option<Slowloris>,
    heavy: Option<Heavy>,
    stop_s: f64,
}

pub async fn run(b: HttpAbuseBench) -> anyhow::Result<Outcome> {
    let server = Server::start(&b)?;
    println!(
        "server ({}): {} entities on SQLite; open-file limit {}; {}",
        if b.plain { "plain" } else { "bounded" },
        fmt_int(b.entities as u64),
        if b.nofile > 0 {
            b.nofile.to_string()
        } else {
            "inherited".into()
        },
        server.described
    );
    let slowloris = if b.no_slowloris {
        None
    } else {
        Some(slowloris(&server.addr, &b).await?)
    };
    let heavy = if b.no_heavy {
        None
    } else {
        Some(heavy(&server.addr, server.pid(), &b).await?)
    };
    let stop_s = server.stop(Duration::from_secs(30))?;
    let results = Results {
        server: server_label(&b),
        slowloris,
        heavy,
        stop_s: round(stop_s, 2),
    };
    print(&results, &b);
    Outcome::new(&b, results)
}

fn server_label(b: &HttpAbuseBench) -> String {
    if b.plain {
        "plain (axum::serve, no limits)".into()
    } else {
        "bounded (serve_with, limits)".into()
    }
}

/// One slow connection: when (seconds after `opened`) the server closed it, if it did before
/// `stop`. Half-header connections send a header line every 2 s, as slowloris does.
async fn hold(
    addr: String,
    half_header: bool,
    opened: Instant,
    stop: Arc<AtomicBool>,
) -> Result<Option<f64>, ()> {
    let Ok(stream) = TcpStream::connect(&addr).await else {
        return Err(());
    };
    let (mut reading, mut writing) = stream.into_split();
    if half_header
        && writing
            .write_all(b"GET /healthz HTTP/1.1\r\nHost: bench\r\n")
            .await
            .is_err()
    {
        return Ok(Some(opened.elapsed().as_secs_f64()));
    }
    let mut sink = [0u8; 1024];
    let mut line = 0u64;
    let mut tick = tokio::time::interval(Duration::from_secs(2));
    tick.tick().await;
    let mut check = tokio::time::interval(Duration::from_millis(100));
    loop {
        tokio::select! {
            read = reading.read(&mut sink) => match read {
                Ok(0) | Err(_) => return Ok(Some(opened.elapsed().as_secs_f64())),
                // A 503 at the cap, before the close.
                Ok(_) => {}
            },
            _ = tick.tick(), if half_header => {
                line += 1;
                if writing.write_all(format!("X-Slow-{line}: x\r\n").as_bytes()).await.is_err() {
                    return Ok(Some(opened.elapsed().as_secs_f64()));
                }
            }
            _ = check.tick() => if stop.load(Ordering::Relaxed) { return Ok(None) },
        }
    }
}

/// `GET /healthz` on a new connection, bounded by `bound`.
async fn probe(addr: &str, at: f64, bound: Duration) -> Probe {
    let started = Instant::now();
    let asked = async {
        let mut s = TcpStream::connect(addr).await?;
        s.write_all(b"GET /healthz HTTP/1.1\r\nHost: bench\r\nConnection: close\r\n\r\n")
            .await?;
        let mut out = Vec::new();
        s.read_to_end(&mut out).await?;
        Ok::<_, std::io::Error>(out)
    };
    let (status, error) = match tokio::time::timeout(bound, asked).await {
        Err(_) => (
            None,
            Some(format!("no answer within {} s", bound.as_secs())),
        ),
        Ok(Err(e)) => (None, Some(e.to_string())),
        Ok(Ok(out)) => {
            let text = String::from_utf8_lossy(&out);
            let status = text.split(' ').nth(1).and_then(|s| s.parse().ok());
            (status, status.is_none().then(|| format!("{text:?}")))
        }
    };
    Probe {
        at_s: round(at, 1),
        status,
        latency_ms: round(started.elapsed().as_secs_f64() * 1000.0, 2),
        error,
    }
}

async fn slowloris(addr: &str, b: &HttpAbuseBench) -> anyhow::Result<Slowloris> {
    let stop = Arc::new(AtomicBool::new(false));
    let opened = Instant::now();
    let mut held = Vec::new();
    for half_header in [false, true] {
        for _ in 0..b.connections {
            held.push((
                half_header,
                tokio::spawn(hold(
                    addr.to_string(),
                    half_header,
                    opened,
                    Arc::clone(&stop),
                )),
            ));
        }
    }
    let hold_for = Duration::from_secs(b.header_read_timeout + b.margin);
    // A probe a second from 1 s on, each allowed 10 s, while the connections are held.
    let mut probes = Vec::new();
    let mut every = tokio::time::interval(Duration::from_secs(1));
    every.tick().await;
    while opened.elapsed() + Duration::from_secs(1) <= hold_for {
        every.tick().await;
        let (addr, at) = (addr.to_string(), opened.elapsed().as_secs_f64());
        probes.push(tokio::spawn(async move {
            probe(&addr, at, Duration::from_secs(10)).await
        }));
    }
    tokio::time::sleep(hold_for.saturating_sub(opened.elapsed())).await;
    let held_s = opened.elapsed().as_secs_f64();
    let load = load_average();
    stop.store(true, Ordering::Relaxed);
    let (mut connected, mut silent_open, mut half_open, mut at_once) = (0, 0, 0, 0);
    let mut closes = Vec::new();
    for (half_header, task) in held {
        match task.await? {
            Err(()) => {}
            Ok(None) => {
                connected += 1;
                if half_header {
                    half_open += 1;
                } else {
                    silent_open += 1;
                }
            }
            Ok(Some(s)) => {
                connected += 1;
                if s < 1.0 {
                    at_once += 1;
                } else {
                    closes.push(s);
                }
            }
        }
    }
    let mut answered = Vec::new();
    for p in probes {
        answered.push(p.await?);
    }
    Ok(Slowloris {
        connections: 2 * b.connections,
        connected,
        held_s: round(held_s, 1),
        silent_open_at_end: silent_open,
        half_header_open_at_end: half_open,
        closed_at_once: at_once,
        median_close_s: round(crate::report::median(closes), 1),
        probes: answered,
        load_average: load,
        server_open_files_limit: b.nofile,
    })
}

struct Sample {
    query: usize,
    status: Option<u16>,
    latency: Duration,
    error: Option<String>,
}

async fn heavy(addr: &str, pid: u32, b: &HttpAbuseBench) -> anyhow::Result<Heavy> {
    let base = format!("http://{addr}");
    for (label, path) in HEAVY {
        let r = reqwest::get(format!("{base}{path}")).await?;
        anyhow::ensure!(
            r.status().is_success(),
            "{label} ({path}) answers {}",
            r.status()
        );
    }
    let peak_reset = std::fs::write(format!("/proc/{pid}/clear_refs"), "5").is_ok();
    let rss_before = status_mb(pid, "VmRSS:");
    let http = reqwest::Client::builder()
        .pool_max_idle_per_host(b.clients)
        .timeout(Duration::from_secs(120))
        .build()?;
    let stop = Arc::new(AtomicBool::new(false));
    let started = Instant::now();
    let mut tasks = Vec::new();
    for c in 0..b.clients {
        let (http, base, stop) = (http.clone(), base.clone(), Arc::clone(&stop));
        tasks.push(tokio::spawn(async move {
            let mut mine = Vec::new();
            let mut n = 0usize;
            while !stop.load(Ordering::Relaxed) {
                let query = (c + n) % HEAVY.len();
                n += 1;
                let t = Instant::now();
                let mut wait = None;
                let (status, error) =
                    match http.get(format!("{base}{}", HEAVY[query].1)).send().await {
                        Ok(r) => {
                            let status = r.status().as_u16();
                            // A polite client waits as told (at most 5 s).
                            wait = r
                                .headers()
                                .get("retry-after")
                                .and_then(|v| v.to_str().ok())
                                .and_then(|v| v.parse::<u64>().ok())
                                .map(|s| Duration::from_secs(s.min(5)));
                            match r.bytes().await {
                                Ok(_) if status == 200 || status == 503 => (Some(status), None),
                                Ok(body) => (
                                    Some(status),
                                    Some(format!(
                                        "{status}: {}",
                                        String::from_utf8_lossy(&body[..body.len().min(200)])
                                    )),
                                ),
                                Err(e) => (Some(status), Some(format!("reading the body: {e}"))),
                            }
                        }
                        Err(e) => (None, Some(format!("request: {e}"))),
                    };
                mine.push(Sample {
                    query,
                    status,
                    latency: t.elapsed(),
                    error,
                });
                if let Some(w) = wait {
                    tokio::time::sleep(w).await;
                }
            }
            mine
        }));
    }
    let mut rss_peak_sampled = rss_before;
    while started.elapsed() < Duration::from_secs(b.seconds) {
        tokio::time::sleep(Duration::from_millis(250)).await;
        rss_peak_sampled = rss_peak_sampled.max(status_mb(pid, "VmRSS:"));
    }
    let load = load_average();
    stop.store(true, Ordering::Relaxed);
    let mut samples = Vec::new();
    for t in tasks {
        samples.extend(t.await?);
    }
    let seconds = started.elapsed().as_secs_f64();
    let hwm = status_mb(pid, "VmHWM:");
    let peak = if peak_reset { hwm } else { rss_peak_sampled };
    let by_query = HEAVY
        .iter()
        .enumerate()
        .map(|(i, (label, _))| {
            (
                label.to_string(),
                figures(samples.iter().filter(|s| s.query == i), seconds),
            )
        })
        .collect();
    Ok(Heavy {
        clients: b.clients,
        seconds: round(seconds, 1),
        all: figures(samples.iter(), seconds),
        by_query,
        rss_before_mb: round(rss_before, 1),
        peak_rss_mb: round(peak, 1),
        peak_reset,
        load_average: load,
    })
}

fn figures<'a>(samples: impl Iterator<Item = &'a Sample>, seconds: f64) -> Figures {
    let (mut ok, mut all) = (Vec::new(), Vec::new());
    let (mut overloaded, mut errors) = (0, 0);
    let mut examples: Vec<String> = Vec::new();
    for s in samples {
        all.push(s.latency);
        match (s.status, &s.error) {
            (Some(200), None) => ok.push(s.latency),
            (Some(503), None) => overloaded += 1,
            (_, e) => {
                errors += 1;
                if let Some(e) = e
                    && examples.len() < 5
                    && !examples.contains(e)
                {
                    examples.push(e.clone());
                }
            }
        }
    }
    ok.sort();
    all.sort();
    Figures {
        requests: all.len(),
        ok: ok.len(),
        overloaded,
        errors,
        requests_per_s: round(all.len() as f64 / seconds.max(1e-9), 1),
        ok_per_s: round(ok.len() as f64 / seconds.max(1e-9), 1),
        p50_ok_ms: round(percentile_ms(&ok, 0.5), 1),
        p95_ok_ms: round(percentile_ms(&ok, 0.95), 1),
        p50_all_ms: round(percentile_ms(&all, 0.5), 1),
        p95_all_ms: round(percentile_ms(&all, 0.95), 1),
        error_examples: examples,
    }
}

fn load_text(l: Option<[f64; 3]>) -> String {
    l.map_or("?".into(), |l| {
        format!("{:.2} {:.2} {:.2}", l[0], l[1], l[2])
    })
}

fn print(r: &Results, b: &HttpAbuseBench) {
    if let Some(s) = &r.slowloris {
        let mut t = Table::new(
            format!(
                "slowloris on the {} server: {} silent + {} half-header connections, held {:.0} s",
                r.server, b.connections, b.connections, s.held_s
            ),
            &["connections", "count"],
        );
        t.row(vec!["opened".into(), s.connected.to_string()]);
        t.row(vec![
            "closed by the server at once (refused)".into(),
            s.closed_at_once.to_string(),
        ]);
        t.row(vec![
            "still open at the end: silent".into(),
            s.silent_open_at_end.to_string(),
        ]);
        t.row(vec![
            "still open at the end: half-header".into(),
            s.half_header_open_at_end.to_string(),
        ]);
        let closed = if s.median_close_s.is_nan() {
            "the server closed none of the others".to_string()
        } else {
            format!(
                "the others were closed after {} s (median)",
                s.median_close_s
            )
        };
        t.note(format!(
            "{closed}; load average {}",
            load_text(s.load_average)
        ));
        let mut answers: Vec<String> = Vec::new();
        for p in &s.probes {
            let what = match (p.status, &p.error) {
                (Some(code), _) => format!("{code} in {:.1} ms", p.latency_ms),
                (None, Some(e)) => e.clone(),
                (None, None) => "?".into(),
            };
            answers.push(format!("{:.0}s: {what}", p.at_s));
        }
        t.note(format!("/healthz while held: {}", answers.join("; ")));
        t.print();
    }
    if let Some(h) = &r.heavy {
        let mut t = Table::new(
            format!(
                "heavy mix on the {} server: {} clients for {:.0} s on expensive Backstage queries, {} entities",
                r.server,
                h.clients,
                h.seconds,
                fmt_int(b.entities as u64)
            ),
            &[
                "query",
                "requests",
                "200",
                "503",
                "errors",
                "requests/s",
                "200/s",
                "p50 200 ms",
                "p95 200 ms",
                "p50 all ms",
                "p95 all ms",
            ],
        );
        let row = |t: &mut Table, label: &str, f: &Figures| {
            t.row(vec![
                label.to_string(),
                fmt_int(f.requests as u64),
                fmt_int(f.ok as u64),
                fmt_int(f.overloaded as u64),
                f.errors.to_string(),
                format!("{:.1}", f.requests_per_s),
                format!("{:.1}", f.ok_per_s),
                format!("{:.0}", f.p50_ok_ms),
                format!("{:.0}", f.p95_ok_ms),
                format!("{:.0}", f.p50_all_ms),
                format!("{:.0}", f.p95_all_ms),
            ]);
        };
        for (label, f) in &h.by_query {
            row(&mut t, label, f);
        }
        row(&mut t, "all", &h.all);
        t.note(format!(
            "server RSS {:.0} MB before, peak {:.0} MB{}; load average {}",
            h.rss_before_mb,
            h.peak_rss_mb,
            if h.peak_reset {
                ""
            } else {
                " (sampled every 250 ms)"
            },
            load_text(h.load_average)
        ));
        for e in &h.all.error_examples {
            t.note(format!("error: {e}"));
        }
        t.print();
    }
    println!(
        "the server stopped {} after its stdin closed",
        if r.stop_s.is_nan() {
            "not within 30 s (killed)".to_string()
        } else {
            format!("{:.2} s", r.stop_s)
        }
    );
}
