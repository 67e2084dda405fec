//! The server's bounds over real sockets: header-read and idle timeouts, the connection cap,
//! the expensive-request limit per route, and a shutdown that ends whatever clients hold.
//!
//! Timeouts are set short (1-2 s) and checked against generous bounds (10 s): these tests say
//! that something happens, never how fast.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use serde_json::{Value, json};
use surveyor_model::{Entity, Observation};
use surveyor_store::Store;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::sync::oneshot;
use tokio::time::{Instant, timeout};

use super::*;
use crate::limit::Limiter;
use crate::test_support::{sync, team_a};

/// What the tests wait for at most: far above every timeout they set.
const BOUND: Duration = Duration::from_secs(10);

fn fixture() -> Vec<Observation> {
    let mut obs: Vec<Observation> = (0..3)
        .map(|i| {
            let v = json!({"apiVersion": "backstage.io/v1alpha1", "kind": "Component",
                "metadata": {"name": format!("svc-{i}"), "namespace": "default"},
                "spec": {"type": "service", "lifecycle": "production", "owner": "team-a"}});
            Observation::discovered(
                "org",
                format!("id-{i}"),
                Entity::from_value(v).expect("entity"),
            )
        })
        .collect();
    obs.push(team_a());
    obs
}

struct Running {
    addr: SocketAddr,
    stop: Option<oneshot::Sender<()>>,
    task: tokio::task::JoinHandle<std::io::Result<()>>,
    _dir: tempfile::TempDir,
}

/// The API over a small catalog, served by `serve_with` until `stop` is sent.
async fn start(options: ServeOptions, limiter: Option<Arc<Limiter>>) -> Running {
    let dir = tempfile::tempdir().expect("dir");
    let store = Store::connect(&format!("sqlite://{}/c.db", dir.path().display()))
        .await
        .expect("store");
    sync(&store, fixture()).await;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let addr = listener.local_addr().expect("addr");
    // As `serve` configures it: a chunked body gets as long as a header.
    let config = ApiConfig {
        body_read_timeout: options.header_read_timeout,
        ..ApiConfig::default()
    };
    let app = build(store, config, None, limiter);
    let (stop, stopped) = oneshot::channel::<()>();
    let task = tokio::spawn(serve_with(listener, app, options, async move {
        let _ = stopped.await;
    }));
    Running {
        addr,
        stop: Some(stop),
        task,
        _dir: dir,
    }
}

fn options(header_read: u64, idle: u64) -> ServeOptions {
    ServeOptions {
        header_read_timeout: Duration::from_secs(header_read),
        idle_timeout: Duration::from_secs(idle),
        max_connections: 64,
        drain_timeout: Duration::from_secs(60),
    }
}

async fn connect(addr: SocketAddr) -> TcpStream {
    TcpStream::connect(addr).await.expect("connect")
}

fn request(path: &str, close: bool) -> Vec<u8> {
    let connection = if close { "close" } else { "keep-alive" };
    format!("GET {path} HTTP/1.1\r\nHost: test\r\nConnection: {connection}\r\n\r\n").into_bytes()
}

/// One answer read off a connection (`Content-Length` bodies, as the API sends): the status,
/// the head lower-cased, the body.
async fn answer(s: &mut TcpStream) -> (u16, String, String) {
    let mut bytes = Vec::new();
    let mut chunk = [0u8; 4096];
    let read = async {
        loop {
            let text = String::from_utf8_lossy(&bytes).to_string();
            if let Some((head, body)) = text.split_once("\r\n\r\n") {
                let head = head.to_ascii_lowercase();
                let length = head
                    .lines()
                    .find_map(|l| l.strip_prefix("content-length:"))
                    .and_then(|v| v.trim().parse::<usize>().ok());
                if length.is_some_and(|n| body.len() >= n) {
                    let status = head
                        .split(' ')
                        .nth(1)
                        .and_then(|s| s.parse().ok())
                        .unwrap_or(0);
                    return (status, head, body.to_string());
                }
            }
            match s.read(&mut chunk).await {
                Ok(0) | Err(_) => panic!("the connection ended before an answer: {text:?}"),
                Ok(n) => bytes.extend_from_slice(&chunk[..n]),
            }
        }
    };
    timeout(BOUND, read).await.expect("an answer within 10 s")
}

/// A request on a new connection (closed after it): status, head, body as JSON or text.
async fn get(addr: SocketAddr, path: &str) -> (u16, String, Value) {
    let mut s = connect(addr).await;
    s.write_all(&request(path, true)).await.expect("write");
    let (status, head, body) = answer(&mut s).await;
    let body = serde_json::from_str(&body).unwrap_or(Value::String(body));
    (status, head, body)
}

/// Whether the server closes the connection within `bound` (what it sends first is read and
/// discarded).
async fn closed_within(s: &mut TcpStream, bound: Duration) -> bool {
    let mut sink = [0u8; 4096];
    timeout(bound, async {
        loop {
            match s.read(&mut sink).await {
                Ok(0) | Err(_) => return,
                Ok(_) => {}
            }
        }
    })
    .await
    .is_ok()
}

/// `/metrics`, until `line` is in it (figures are recorded as connections end).
async fn metrics_show(addr: SocketAddr, line: &str) {
    let deadline = Instant::now() + BOUND;
    loop {
        let (status, _, body) = get(addr, "/metrics").await;
        let text = body.as_str().unwrap_or_default().to_string();
        if status == 200 && text.lines().any(|l| l == line) {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "no {line:?} in /metrics:\n{text}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test]
async fn silent_and_half_sent_headers_are_closed_after_the_header_read_timeout() {
    let s = start(options(1, 60), None).await;
    let mut silent = connect(s.addr).await;
    // A header sent a line at a time, forever, the way slowloris keeps a connection.
    let (mut reading, mut writing) = connect(s.addr).await.into_split();
    writing
        .write_all(b"GET /healthz HTTP/1.1\r\nHost: test\r\n")
        .await
        .expect("write");
    let drip = tokio::spawn(async move {
        for i in 0.. {
            tokio::time::sleep(Duration::from_millis(200)).await;
            if writing
                .write_all(format!("X-Drip-{i}: x\r\n").as_bytes())
                .await
                .is_err()
            {
                return;
            }
        }
    });
    assert!(
        closed_within(&mut silent, BOUND).await,
        "a connection that sends nothing stays open"
    );
    let mut sink = [0u8; 1024];
    let closed = timeout(BOUND, async {
        loop {
            match reading.read(&mut sink).await {
                Ok(0) | Err(_) => return,
                Ok(_) => {}
            }
        }
    })
    .await;
    assert!(closed.is_ok(), "a dripping header keeps its connection");
    drip.abort();
    // A well-behaved client is still served, and the two count as header timeouts.
    assert_eq!(get(s.addr, "/healthz").await.0, 200);
    metrics_show(
        s.addr,
        "surveyor_api_connections_timed_out_total{reason=\"header_read\"} 2",
    )
    .await;
}

#[tokio::test]
async fn a_header_larger_than_the_buffer_is_refused() {
    let s = start(options(10, 60), None).await;
    let mut c = connect(s.addr).await;
    let mut header = String::from("GET /healthz HTTP/1.1\r\nHost: test\r\n");
    while header.len() < 70 * 1024 {
        header.push_str(&format!(
            "X-Filler-{}: {}\r\n",
            header.len(),
            "x".repeat(64)
        ));
    }
    header.push_str("\r\n");
    // The server may answer and close before it has read it all.
    let _ = c.write_all(header.as_bytes()).await;
    let mut received = Vec::new();
    let _ = timeout(BOUND, c.read_to_end(&mut received)).await;
    let text = String::from_utf8_lossy(&received);
    assert!(text.starts_with("HTTP/1.1 431 "), "{text}");
}

#[tokio::test]
async fn a_body_sent_a_byte_at_a_time_is_cut_off() {
    let s = start(options(1, 60), None).await;
    let (mut reading, mut writing) = connect(s.addr).await.into_split();
    writing
        .write_all(
            b"POST /api/v1/connectors/gh/sync HTTP/1.1\r\nHost: test\r\nTransfer-Encoding: chunked\r\n\r\n",
        )
        .await
        .expect("write");
    let drip = tokio::spawn(async move {
        loop {
            tokio::time::sleep(Duration::from_millis(200)).await;
            if writing.write_all(b"1\r\nx\r\n").await.is_err() {
                return;
            }
        }
    });
    let mut received = Vec::new();
    let read = timeout(BOUND, reading.read_to_end(&mut received)).await;
    drip.abort();
    assert!(read.is_ok(), "the connection is held by a dripping body");
    let text = String::from_utf8_lossy(&received);
    assert!(text.starts_with("HTTP/1.1 408 "), "{text}");
    assert!(text.contains("request_timeout"), "{text}");
}

#[tokio::test]
async fn an_idle_kept_alive_connection_is_closed_after_the_idle_timeout() {
    let s = start(options(30, 2), None).await;
    // Requests 200 ms apart keep a connection: idleness is counted, not age.
    let mut busy = connect(s.addr).await;
    let started = Instant::now();
    while started.elapsed() < Duration::from_secs(5) {
        busy.write_all(&request("/healthz", false))
            .await
            .expect("write");
        assert_eq!(answer(&mut busy).await.0, 200, "kept alive");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    // Once it stops asking, it is closed (long before the 30 s header timeout).
    assert!(
        closed_within(&mut busy, BOUND).await,
        "an idle connection stays open"
    );
    metrics_show(
        s.addr,
        "surveyor_api_connections_timed_out_total{reason=\"idle\"} 1",
    )
    .await;
}

#[tokio::test]
async fn past_the_connection_cap_a_client_is_answered_503_and_healthz_answers_again_later() {
    let s = start(
        ServeOptions {
            max_connections: 2,
            ..options(60, 60)
        },
        None,
    )
    .await;
    let mut held = Vec::new();
    for _ in 0..2 {
        let mut c = connect(s.addr).await;
        c.write_all(&request("/healthz", false))
            .await
            .expect("write");
        assert_eq!(answer(&mut c).await.0, 200);
        held.push(c);
    }
    let mut third = connect(s.addr).await;
    third
        .write_all(&request("/healthz", false))
        .await
        .expect("write");
    let (status, head, body) = answer(&mut third).await;
    assert_eq!(status, 503, "{head}\n{body}");
    assert!(head.contains("\r\nretry-after: "), "{head}");
    assert_eq!(
        serde_json::from_str::<Value>(&body)
            .ok()
            .map(|b| b["error"].clone()),
        Some(json!("overloaded")),
        "{body}"
    );
    assert!(closed_within(&mut third, BOUND).await, "it is closed");
    // One client goes: its slot is free for the next.
    drop(held.remove(0));
    let deadline = Instant::now() + BOUND;
    loop {
        let (status, _, _) = get(s.addr, "/healthz").await;
        if status == 200 {
            break;
        }
        assert_eq!(status, 503);
        assert!(Instant::now() < deadline, "no slot came free");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    metrics_show(s.addr, "surveyor_api_connections_max 2").await;
    let (_, _, metrics) = get(s.addr, "/metrics").await;
    let refused = metrics
        .as_str()
        .unwrap_or_default()
        .lines()
        .find_map(|l| l.strip_prefix("surveyor_api_connections_refused_total "))
        .and_then(|n| n.parse::<u64>().ok());
    assert!(refused.is_some_and(|n| n >= 1), "{metrics}");
}

#[tokio::test]
async fn expensive_routes_past_their_limit_answer_503_in_their_own_shape() {
    let limiter = Arc::new(Limiter::new(1, 0, Duration::from_secs(60)));
    let s = start(options(10, 60), Some(Arc::clone(&limiter))).await;
    // Whatever holds the only permit (here the test) is the expensive request running.
    let held = limiter.acquire().await.expect("the permit");
    for path in [
        "/api/catalog/entity-facets?facet=spec.type",
        "/api/catalog/entities?filter=spec.type=service",
        "/api/catalog/entities/by-query?filter=spec.type=service",
        "/api/catalog/entities/by-query?orderField=metadata.name",
        "/api/catalog/entities/by-query?filter=kind=component&fullTextFilterTerm=svc",
        // Whole lists (Backstage's default) read the catalog a page at a time.
        "/api/catalog/entities?filter=kind=component",
        "/api/catalog/entities/by-query?filter=kind=component&limit=5000",
    ] {
        let (status, head, body) = get(s.addr, path).await;
        assert_eq!(status, 503, "{path}: {body}");
        assert!(head.contains("\r\nretry-after: 1\r\n"), "{path}: {head}");
        assert_eq!(
            body["error"]["name"], "ServiceUnavailableError",
            "{path}: Backstage's shape: {body}"
        );
        assert_eq!(body["response"]["statusCode"], 503, "{path}");
    }
    for path in [
        "/api/v1/entities/component/default/svc-0/graph",
        "/api/v1/audit/ownership",
        "/api/v1/audit/drift",
        "/api/v1/audit/ownership/history",
        "/api/v1/audit/drift/history",
    ] {
        let (status, head, body) = get(s.addr, path).await;
        assert_eq!(status, 503, "{path}: {body}");
        assert!(head.contains("\r\nretry-after: 1\r\n"), "{path}: {head}");
        assert_eq!(body["error"], "overloaded", "{path}: our shape: {body}");
    }
    // Cheap routes, and what the store pages, are never limited.
    for path in [
        "/healthz",
        "/readyz",
        "/api/catalog/entities/by-name/component/default/svc-0",
        "/api/v1/entities/component/default/svc-0",
        "/api/v1/entities?kind=component",
        "/api/catalog/entities?filter=kind=component&limit=2",
        "/api/catalog/entities/by-query?filter=kind=component,relations.ownedBy=group:default/team-a&limit=2",
    ] {
        let (status, _, body) = get(s.addr, path).await;
        assert_eq!(status, 200, "{path}: {body}");
    }
    let (_, _, metrics) = get(s.addr, "/metrics").await;
    let text = metrics.as_str().unwrap_or_default();
    for line in [
        "surveyor_api_requests_shed_total{route=\"/api/catalog/entity-facets\"} 1",
        "surveyor_api_requests_shed_total{route=\"/api/catalog/entities/by-query\"} 4",
        "surveyor_api_requests_shed_total{route=\"/api/v1/audit/drift\"} 1",
    ] {
        assert!(text.lines().any(|l| l == line), "no {line:?} in:\n{text}");
    }
    drop(held);
    let (status, _, body) = get(s.addr, "/api/catalog/entity-facets?facet=spec.type").await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(
        body["facets"]["spec.type"],
        json!([{"value": "service", "count": 3}, {"value": "team", "count": 1}])
    );
}

#[tokio::test]
async fn shutdown_closes_idle_and_half_sent_connections_and_finishes_requests_in_flight() {
    let limiter = Arc::new(Limiter::new(1, 1, Duration::from_secs(60)));
    let mut s = start(options(60, 60), Some(Arc::clone(&limiter))).await;
    let held = limiter.acquire().await.expect("the permit");
    let mut idle = connect(s.addr).await;
    idle.write_all(&request("/healthz", false))
        .await
        .expect("write");
    assert_eq!(answer(&mut idle).await.0, 200);
    let mut half = connect(s.addr).await;
    half.write_all(b"GET /healthz HTTP/1.1\r\nHost: te")
        .await
        .expect("write");
    let mut silent = connect(s.addr).await;
    // A request in flight: queued behind the permit the test holds.
    let mut in_flight = connect(s.addr).await;
    in_flight
        .write_all(&request("/api/catalog/entity-facets?facet=kind", false))
        .await
        .expect("write");
    let deadline = Instant::now() + BOUND;
    while limiter.queued() == 0 {
        assert!(Instant::now() < deadline, "the request never queued");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let _ = s.stop.take().map(|stop| stop.send(()));
    // Every timeout is 60 s: these close because the server is stopping.
    for (what, c) in [
        ("idle", &mut idle),
        ("half-sent header", &mut half),
        ("silent", &mut silent),
    ] {
        assert!(closed_within(c, BOUND).await, "{what} stays open");
    }
    assert!(!s.task.is_finished(), "a request is still in flight");
    drop(held);
    let (status, _, body) = answer(&mut in_flight).await;
    assert_eq!(status, 200, "the request in flight is answered: {body}");
    assert!(closed_within(&mut in_flight, BOUND).await, "then closed");
    let ended = timeout(BOUND, s.task).await.expect("serve ends");
    assert!(matches!(ended, Ok(Ok(()))), "{ended:?}");
}

#[tokio::test]
async fn shutdown_gives_requests_in_flight_the_drain_timeout_then_ends() {
    let limiter = Arc::new(Limiter::new(1, 1, Duration::from_secs(600)));
    let mut s = start(
        ServeOptions {
            drain_timeout: Duration::from_secs(1),
            ..options(60, 60)
        },
        Some(Arc::clone(&limiter)),
    )
    .await;
    // Never released: the request waits for good.
    let _held = limiter.acquire().await.expect("the permit");
    let mut stuck = connect(s.addr).await;
    stuck
        .write_all(&request("/api/catalog/entity-facets?facet=kind", false))
        .await
        .expect("write");
    let deadline = Instant::now() + BOUND;
    while limiter.queued() == 0 {
        assert!(Instant::now() < deadline, "the request never queued");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let _ = s.stop.take().map(|stop| stop.send(()));
    let ended = timeout(BOUND, s.task).await.expect("serve ends");
    assert!(matches!(ended, Ok(Ok(()))), "{ended:?}");
    assert!(
        closed_within(&mut stuck, BOUND).await,
        "its connection is closed"
    );
}
