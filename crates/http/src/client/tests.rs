//! The client against a scripted server on loopback that answers the way real APIs do.

use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex};

use axum::Router;
use axum::extract::{Request, State};
use axum::http::{HeaderMap as AxHeaders, StatusCode as AxStatus};
use axum::response::{IntoResponse, Response as AxResponse};

use super::*;
use crate::MemoryCache;

/// One scripted answer: status, headers, body, and an optional delay before answering.
#[derive(Clone)]
struct Answer {
    status: u16,
    headers: Vec<(&'static str, String)>,
    body: &'static str,
    delay_ms: u64,
}

fn answer(status: u16, body: &'static str) -> Answer {
    Answer {
        status,
        headers: Vec::new(),
        body,
        delay_ms: 0,
    }
}

#[derive(Default)]
struct Script {
    answers: HashMap<String, VecDeque<Answer>>,
    /// Every request seen: (path, If-None-Match, Authorization present).
    seen: Vec<(String, Option<String>)>,
}

type Shared = Arc<Mutex<Script>>;

async fn handle(State(script): State<Shared>, req: Request) -> AxResponse {
    let path = req.uri().path().to_string();
    let inm = req
        .headers()
        .get("if-none-match")
        .and_then(|v| v.to_str().ok())
        .map(str::to_string);
    let next = {
        let mut s = script.lock().unwrap();
        s.seen.push((path.clone(), inm.clone()));
        let queue = s.answers.get_mut(&path);
        // The last scripted answer repeats.
        queue.and_then(|q| {
            if q.len() > 1 {
                q.pop_front()
            } else {
                q.front().cloned()
            }
        })
    };
    let Some(a) = next else {
        return (AxStatus::NOT_FOUND, "no script").into_response();
    };
    if a.delay_ms > 0 {
        tokio::time::sleep(Duration::from_millis(a.delay_ms)).await;
    }
    // ETag support like GitHub's: a matching If-None-Match gets a bodyless 304.
    let etag = a
        .headers
        .iter()
        .find(|(k, _)| *k == "etag")
        .map(|(_, v)| v.clone());
    if a.status == 200 && etag.is_some() && inm == etag {
        return AxStatus::NOT_MODIFIED.into_response();
    }
    let mut headers = AxHeaders::new();
    for (k, v) in &a.headers {
        headers.insert(*k, v.parse().unwrap());
    }
    (AxStatus::from_u16(a.status).unwrap(), headers, a.body).into_response()
}

async fn server(script: Vec<(&str, Vec<Answer>)>) -> (String, Shared) {
    let shared: Shared = Arc::new(Mutex::new(Script::default()));
    {
        let mut s = shared.lock().unwrap();
        for (path, answers) in script {
            s.answers
                .insert(path.to_string(), answers.into_iter().collect());
        }
    }
    let app = Router::new().fallback(handle).with_state(shared.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        let _ = axum::serve(listener, app).await;
    });
    (format!("http://{addr}"), shared)
}

fn fast() -> HttpConfig {
    HttpConfig {
        min_backoff: Duration::from_millis(10),
        max_backoff: Duration::from_millis(50),
        timeout: Duration::from_secs(5),
        requests_per_second: 1000,
        burst: 1000,
        ..HttpConfig::default()
    }
}

#[tokio::test]
async fn etag_turns_a_resync_into_304s() {
    let mut a = answer(200, "{\"repos\":[1,2,3]}");
    a.headers.push(("etag", "\"v1\"".into()));
    let (base, script) = server(vec![("/repos", vec![a])]).await;
    let client = HttpClient::new(fast(), Some(Arc::new(MemoryCache::default()))).unwrap();
    let first = client
        .get(&format!("{base}/repos"), HeaderMap::new())
        .await
        .unwrap();
    assert!(!first.from_cache);
    let second = client
        .get(&format!("{base}/repos"), HeaderMap::new())
        .await
        .unwrap();
    assert!(second.from_cache);
    assert_eq!(second.body, first.body);
    assert_eq!(second.status, 200);
    let m = client.metrics().snapshot();
    assert_eq!((m.requests, m.not_modified), (2, 1));
    let seen = script.lock().unwrap().seen.clone();
    assert_eq!(
        seen[1].1.as_deref(),
        Some("\"v1\""),
        "the second request was conditional"
    );
}

#[tokio::test]
async fn honours_retry_after_on_429() {
    let mut limited = answer(429, "{\"message\":\"slow down\"}");
    limited.headers.push(("retry-after", "1".into()));
    let (base, _) = server(vec![("/x", vec![limited, answer(200, "ok")])]).await;
    let client = HttpClient::new(fast(), None).unwrap();
    let r = client
        .get(&format!("{base}/x"), HeaderMap::new())
        .await
        .unwrap();
    assert_eq!(&r.body[..], b"ok");
    let m = client.metrics().snapshot();
    assert_eq!((m.requests, m.retries, m.rate_limit_waits), (2, 1, 1));
}

#[tokio::test]
async fn waits_out_githubs_spent_quota() {
    let reset = SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs()
        + 1;
    let mut spent = answer(403, "{\"message\":\"API rate limit exceeded\"}");
    spent.headers.push(("x-ratelimit-remaining", "0".into()));
    spent.headers.push(("x-ratelimit-reset", reset.to_string()));
    let (base, _) = server(vec![("/q", vec![spent, answer(200, "ok")])]).await;
    let client = HttpClient::new(fast(), None).unwrap();
    assert!(
        client
            .get(&format!("{base}/q"), HeaderMap::new())
            .await
            .is_ok()
    );
    assert_eq!(client.metrics().snapshot().rate_limit_waits, 1);
}

#[tokio::test]
async fn retries_5xx_then_succeeds() {
    let (base, _) = server(vec![(
        "/p",
        vec![
            answer(502, "bad gateway"),
            answer(503, ""),
            answer(200, "ok"),
        ],
    )])
    .await;
    let client = HttpClient::new(fast(), None).unwrap();
    let r = client
        .get(&format!("{base}/p"), HeaderMap::new())
        .await
        .unwrap();
    assert_eq!(&r.body[..], b"ok");
    assert_eq!(client.metrics().snapshot().retries, 2);
}

#[tokio::test]
async fn client_errors_are_not_retried() {
    let (base, _) = server(vec![(
        "/gone",
        vec![answer(404, "{\"message\":\"Not Found\"}")],
    )])
    .await;
    let client = HttpClient::new(fast(), None).unwrap();
    let e = client
        .get(&format!("{base}/gone"), HeaderMap::new())
        .await
        .unwrap_err();
    assert_eq!(e.status(), Some(404));
    assert!(e.to_string().ends_with("HTTP 404: Not Found"), "{e}");
    assert_eq!(client.metrics().snapshot().requests, 1);
}

#[tokio::test]
async fn retries_are_bounded() {
    let (base, _) = server(vec![("/down", vec![answer(500, "boom")])]).await;
    let config = HttpConfig {
        max_retries: 3,
        ..fast()
    };
    let client = HttpClient::new(config, None).unwrap();
    let e = client
        .get(&format!("{base}/down"), HeaderMap::new())
        .await
        .unwrap_err();
    assert!(matches!(e, HttpError::Exhausted { attempts: 4, .. }), "{e}");
    assert_eq!(e.status(), Some(500));
    assert_eq!(client.metrics().snapshot().requests, 4);
}

#[tokio::test]
async fn a_wait_beyond_the_budget_fails_now() {
    let mut limited = answer(429, "");
    limited.headers.push(("retry-after", "3600".into()));
    let (base, _) = server(vec![("/later", vec![limited])]).await;
    let config = HttpConfig {
        max_total_wait: Duration::from_secs(5),
        ..fast()
    };
    let client = HttpClient::new(config, None).unwrap();
    let e = client
        .get(&format!("{base}/later"), HeaderMap::new())
        .await
        .unwrap_err();
    assert_eq!(e.status(), Some(429));
    assert_eq!(
        client.metrics().snapshot().requests,
        1,
        "no retry when the wait does not fit"
    );
}

#[tokio::test]
async fn timeouts_are_retried_then_reported() {
    let mut slow = answer(200, "late");
    slow.delay_ms = 2_000;
    let (base, _) = server(vec![("/slow", vec![slow])]).await;
    let config = HttpConfig {
        timeout: Duration::from_millis(200),
        max_retries: 1,
        ..fast()
    };
    let client = HttpClient::new(config, None).unwrap();
    let e = client
        .get(&format!("{base}/slow"), HeaderMap::new())
        .await
        .unwrap_err();
    match e {
        HttpError::Exhausted { attempts, last, .. } => {
            assert_eq!(attempts, 2);
            assert!(matches!(*last, HttpError::Timeout { .. }));
        }
        other => panic!("expected exhaustion, got {other}"),
    }
}

#[tokio::test]
async fn errors_carry_no_credentials() {
    let (base, _) = server(vec![(
        "/secret",
        vec![answer(401, "{\"message\":\"Bad credentials\"}")],
    )])
    .await;
    let client = HttpClient::new(fast(), None).unwrap();
    let mut headers = HeaderMap::new();
    headers.insert(
        "authorization",
        HeaderValue::from_static("Bearer sentinel-token-123"),
    );
    let e = client
        .get(
            &format!("{base}/secret?private_token=sentinel-token-123"),
            headers,
        )
        .await
        .unwrap_err();
    let text = format!("{e} {e:?}");
    assert!(!text.contains("sentinel-token-123"), "{text}");
    assert!(text.contains("/secret"));
}

#[tokio::test]
async fn our_own_rate_limit_spaces_requests() {
    let (base, _) = server(vec![("/r", vec![answer(200, "ok")])]).await;
    let config = HttpConfig {
        requests_per_second: 5,
        burst: 1,
        ..fast()
    };
    let client = HttpClient::new(config, None).unwrap();
    for _ in 0..3 {
        client
            .get(&format!("{base}/r"), HeaderMap::new())
            .await
            .unwrap();
    }
    assert!(client.metrics().snapshot().rate_limit_waits >= 1);
}
