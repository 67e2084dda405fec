//! The HTTP server under the API: our own accept loop over hyper's HTTP/1 connections, so that
//! what a client can hold is bounded (axum's `serve` bounds nothing).
//!
//! - **Header read**: a request's header must arrive within `header_read_timeout`, counted from
//!   connecting for the first request and from its first byte for later ones on a kept-alive
//!   connection; a client that sends nothing, or a header a byte at a time, is closed then.
//! - **Idle**: a kept-alive connection with no request for `idle_timeout` is closed (counted
//!   from the answer, or from the last byte the client read of it, so a slow reader gets as
//!   long as the answer keeps moving).
//! - **Cap**: at most `max_connections` are open; a connection past the cap is answered `503`
//!   with `Retry-After` and closed, not left in the listen backlog.
//! - **Accept errors** (out of file descriptors) back off briefly instead of spinning.
//! - **Shutdown**: stop accepting, close connections with no request in flight at once (idle
//!   ones and half-sent headers alike), let in-flight requests finish, and abort whatever is
//!   left after `drain_timeout`.
//!
//! Why not hyper's own `header_read_timeout`: hyper (1.12) restarts it whenever a kept-alive
//! connection waits for its next request, so it also closes idle connections after the header
//! timeout, and an idle timeout longer than it could not exist. One watchdog does both: it sits
//! in the connection's reads, which hyper polls whenever it waits for a request.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::future::Future;
use std::io;
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, LazyLock, Mutex};
use std::task::{Context, Poll, Waker};
use std::time::Duration;

use axum::Router;
use hyper::server::conn::http1;
use hyper::service::Service as _;
use hyper_util::rt::TokioIo;
use hyper_util::service::TowerToHyperService;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt, ReadBuf};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{OwnedSemaphorePermit, Semaphore, watch};
use tokio::task::JoinSet;
use tokio::time::{Instant, Sleep};

/// How long a connection may take over its header and stay idle, how many may be open, and
/// how long a shutdown waits for in-flight requests.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ServeOptions {
    pub header_read_timeout: Duration,
    pub idle_timeout: Duration,
    pub max_connections: usize,
    /// After the shutdown signal, in-flight requests get this long; then the rest is aborted.
    pub drain_timeout: Duration,
}

impl Default for ServeOptions {
    fn default() -> Self {
        Self {
            header_read_timeout: DEFAULT_HEADER_READ_TIMEOUT,
            idle_timeout: DEFAULT_IDLE_TIMEOUT,
            max_connections: default_max_connections(),
            drain_timeout: DEFAULT_DRAIN_TIMEOUT,
        }
    }
}

/// Generous for any client on any network (a header is one packet or a few), short enough
/// that a slow-header attack frees its connections quickly.
pub const DEFAULT_HEADER_READ_TIMEOUT: Duration = Duration::from_secs(10);
/// Long enough for a portal's client pool to reuse its connections between page loads, short
/// enough that idle ones do not pile up.
pub const DEFAULT_IDLE_TIMEOUT: Duration = Duration::from_secs(60);
/// What a shutdown waits for in-flight requests before it aborts them.
pub const DEFAULT_DRAIN_TIMEOUT: Duration = Duration::from_secs(10);

/// The most connections served by default: a portal backend needs far fewer; each one costs
/// a task and up to [`MAX_BUF`] of buffer.
const CONNECTION_CEILING: usize = 1024;
/// File descriptors kept for everything else: the database pool, connectors' HTTP clients,
/// logs, and connections being refused.
const FD_RESERVE: u64 = 128;
/// The largest header hyper buffers (the URI limit is 16 KiB): bounds a connection's memory.
const MAX_BUF: usize = 64 * 1024;
/// Connections being refused at once (each writes a 503 and waits at most [`LINGER`]);
/// past it, refused connections are closed without an answer.
const REFUSING: usize = 64;
/// How long a refused connection is kept to let the client read the 503.
const LINGER: Duration = Duration::from_secs(1);
/// What a client refused at the cap is told to wait.
const CAP_RETRY_AFTER_SECS: u64 = 2;

/// The default connection cap: under the soft open-file limit with [`FD_RESERVE`] to spare
/// (so the cap, not `EMFILE`, is what a flood meets: past `EMFILE` connections wait unseen in
/// the backlog), at most [`CONNECTION_CEILING`].
pub fn default_max_connections() -> usize {
    cap_for(open_file_limit())
}

fn cap_for(limit: Option<u64>) -> usize {
    match limit {
        None => CONNECTION_CEILING,
        Some(n) => {
            let usable = n.saturating_sub(FD_RESERVE).max(n / 2).max(1);
            usize::try_from(usable)
                .unwrap_or(CONNECTION_CEILING)
                .min(CONNECTION_CEILING)
        }
    }
}

/// The soft `RLIMIT_NOFILE`, where there is one.
#[cfg(unix)]
fn open_file_limit() -> Option<u64> {
    let mut limit = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit only writes the struct it is given, which lives on this stack.
    let rc = unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut limit) };
    // rlim_t is u64 on Linux, not on every Unix.
    #[allow(clippy::unnecessary_cast)]
    let current = limit.rlim_cur as u64;
    (rc == 0 && limit.rlim_cur != libc::RLIM_INFINITY).then_some(current)
}

#[cfg(not(unix))]
fn open_file_limit() -> Option<u64> {
    None
}

/// Why the watchdog closed a connection.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
enum Expiry {
    Header,
    Idle,
}

impl Expiry {
    fn label(self) -> &'static str {
        match self {
            Self::Header => "header_read",
            Self::Idle => "idle",
        }
    }
}

/// The server's connection figures, for `/metrics`.
#[derive(Debug, Default)]
pub(crate) struct ConnectionStats {
    max: AtomicU64,
    open: AtomicU64,
    accepted: AtomicU64,
    refused: AtomicU64,
    accept_errors: AtomicU64,
    timed_out: Mutex<BTreeMap<Expiry, u64>>,
}

impl ConnectionStats {
    fn opened(self: &Arc<Self>) -> OpenGuard {
        self.accepted.fetch_add(1, Ordering::Relaxed);
        self.open.fetch_add(1, Ordering::Relaxed);
        OpenGuard(Arc::clone(self))
    }

    fn timed_out(&self, why: Expiry) {
        if let Ok(mut t) = self.timed_out.lock() {
            *t.entry(why).or_default() += 1;
        }
    }

    pub(crate) fn write(&self, out: &mut String) {
        let get = |a: &AtomicU64| a.load(Ordering::Relaxed);
        let _ = writeln!(
            out,
            "# HELP surveyor_api_connections_open HTTP connections open now.\n\
             # TYPE surveyor_api_connections_open gauge\n\
             surveyor_api_connections_open {}\n\
             # HELP surveyor_api_connections_max Connections served at once ([server] max_connections).\n\
             # TYPE surveyor_api_connections_max gauge\n\
             surveyor_api_connections_max {}\n\
             # HELP surveyor_api_connections_accepted_total Connections accepted and served.\n\
             # TYPE surveyor_api_connections_accepted_total counter\n\
             surveyor_api_connections_accepted_total {}\n\
             # HELP surveyor_api_connections_refused_total Connections answered 503 and closed because max_connections were open.\n\
             # TYPE surveyor_api_connections_refused_total counter\n\
             surveyor_api_connections_refused_total {}\n\
             # HELP surveyor_api_accept_errors_total Failed accepts (out of file descriptors, ...), each followed by a pause.\n\
             # TYPE surveyor_api_accept_errors_total counter\n\
             surveyor_api_accept_errors_total {}",
            get(&self.open),
            get(&self.max),
            get(&self.accepted),
            get(&self.refused),
            get(&self.accept_errors),
        );
        out.push_str(
            "# HELP surveyor_api_connections_timed_out_total Connections closed for a header not sent within header_read_timeout or no request within idle_timeout.\n\
             # TYPE surveyor_api_connections_timed_out_total counter\n",
        );
        let timed_out = self.timed_out.lock().map(|t| t.clone()).unwrap_or_default();
        for why in [Expiry::Header, Expiry::Idle] {
            let _ = writeln!(
                out,
                "surveyor_api_connections_timed_out_total{{reason=\"{}\"}} {}",
                why.label(),
                timed_out.get(&why).copied().unwrap_or(0)
            );
        }
    }
}

struct OpenGuard(Arc<ConnectionStats>);

impl Drop for OpenGuard {
    fn drop(&mut self) {
        self.0.open.fetch_sub(1, Ordering::Relaxed);
    }
}

/// Where one connection is: what its deadline is measured from.
struct Phase {
    accepted: Instant,
    /// Requests begun on it.
    requests: u64,
    in_flight: u32,
    /// When the last answer was handed to hyper.
    answered: Instant,
    /// The first byte of the next request, read while none was in flight.
    first_byte: Option<Instant>,
    /// The last write that moved bytes.
    wrote: Instant,
    /// A write waits for the client to read.
    write_blocked: bool,
    expired: Option<Expiry>,
    /// The connection's task, as its last read that waited left it: a request ending wakes
    /// it, so the idle deadline is armed (hyper may not read again until the client writes).
    reader: Option<Waker>,
}

/// One connection's watchdog state, shared by its socket and its service.
struct Watch {
    header_read: Duration,
    idle: Duration,
    phase: Mutex<Phase>,
}

impl Watch {
    fn new(options: &ServeOptions) -> Self {
        let now = Instant::now();
        Self {
            header_read: options.header_read_timeout,
            idle: options.idle_timeout,
            phase: Mutex::new(Phase {
                accepted: now,
                requests: 0,
                in_flight: 0,
                answered: now,
                first_byte: None,
                wrote: now,
                write_blocked: false,
                expired: None,
                reader: None,
            }),
        }
    }

    fn with<T>(&self, f: impl FnOnce(&mut Phase) -> T) -> T {
        // A poisoned lock still holds a consistent phase: every update is a plain store.
        let mut p = self.phase.lock().unwrap_or_else(|e| e.into_inner());
        f(&mut p)
    }

    /// When the connection is to be closed, and why; none while a request is in flight
    /// (a handler's time is the handler's business).
    fn deadline(&self) -> Option<(Instant, Expiry)> {
        self.with(|p| {
            if p.in_flight > 0 {
                None
            } else if p.requests == 0 {
                Some((p.accepted + self.header_read, Expiry::Header))
            } else if let Some(first) = p.first_byte {
                Some((first + self.header_read, Expiry::Header))
            } else {
                Some((p.answered.max(p.wrote) + self.idle, Expiry::Idle))
            }
        })
    }

    fn read_some(&self) {
        self.with(|p| {
            if p.in_flight == 0 && p.first_byte.is_none() {
                p.first_byte = Some(Instant::now());
            }
        });
    }

    fn wrote(&self, moved: bool) {
        self.with(|p| {
            p.write_blocked = !moved;
            if moved {
                p.wrote = Instant::now();
            }
        });
    }

    fn begin(self: &Arc<Self>) -> InFlight {
        self.with(|p| {
            p.requests += 1;
            p.in_flight += 1;
            p.first_byte = None;
        });
        InFlight(Arc::clone(self))
    }

    fn expire(&self, why: Expiry) {
        self.with(|p| p.expired = Some(why));
    }

    fn expired(&self) -> Option<Expiry> {
        self.with(|p| p.expired)
    }

    /// Nothing would be lost by closing now: no request in flight, no answer waiting to be
    /// written (a half-sent header is not a request yet).
    fn closable(&self) -> bool {
        self.with(|p| p.in_flight == 0 && !p.write_blocked)
    }
}

/// A request in flight; its end starts the idle clock.
struct InFlight(Arc<Watch>);

impl Drop for InFlight {
    fn drop(&mut self) {
        let reader = self.0.with(|p| {
            p.in_flight = p.in_flight.saturating_sub(1);
            p.answered = Instant::now();
            p.reader.take()
        });
        if let Some(w) = reader {
            w.wake();
        }
    }
}

/// The socket as hyper sees it: reads and writes pass through; a read that would wait past
/// the connection's deadline fails instead, which makes hyper close the connection.
struct Watched {
    io: TcpStream,
    watch: Arc<Watch>,
    timer: Pin<Box<Sleep>>,
    timer_at: Option<Instant>,
}

impl Watched {
    fn new(io: TcpStream, watch: Arc<Watch>) -> Self {
        Self {
            io,
            watch,
            timer: Box::pin(tokio::time::sleep(Duration::ZERO)),
            timer_at: None,
        }
    }

    /// Pending until the deadline (re-read on every wait, as it moves with the phase).
    fn poll_deadline(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        self.watch.with(|p| match &mut p.reader {
            Some(w) if w.will_wake(cx.waker()) => {}
            slot => *slot = Some(cx.waker().clone()),
        });
        let Some((at, why)) = self.watch.deadline() else {
            return Poll::Pending;
        };
        if self.timer_at != Some(at) {
            self.timer.as_mut().reset(at);
            self.timer_at = Some(at);
        }
        match self.timer.as_mut().poll(cx) {
            Poll::Pending => Poll::Pending,
            Poll::Ready(()) => {
                self.watch.expire(why);
                let message = match why {
                    Expiry::Header => "no complete request header within header_read_timeout",
                    Expiry::Idle => "no request within idle_timeout",
                };
                Poll::Ready(Err(io::Error::new(io::ErrorKind::TimedOut, message)))
            }
        }
    }
}

impl AsyncRead for Watched {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        let before = buf.filled().len();
        match Pin::new(&mut this.io).poll_read(cx, buf) {
            Poll::Ready(Ok(())) => {
                if buf.filled().len() > before {
                    this.watch.read_some();
                }
                Poll::Ready(Ok(()))
            }
            Poll::Ready(Err(e)) => Poll::Ready(Err(e)),
            Poll::Pending => this.poll_deadline(cx),
        }
    }
}

impl AsyncWrite for Watched {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        let r = Pin::new(&mut this.io).poll_write(cx, buf);
        this.watch.wrote(matches!(r, Poll::Ready(Ok(n)) if n > 0));
        r
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        let r = Pin::new(&mut this.io).poll_write_vectored(cx, bufs);
        this.watch.wrote(matches!(r, Poll::Ready(Ok(n)) if n > 0));
        r
    }

    fn is_write_vectored(&self) -> bool {
        self.io.is_write_vectored()
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().io).poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().io).poll_shutdown(cx)
    }
}

/// What a connection past the cap is told before it is closed.
static REFUSAL: LazyLock<Vec<u8>> = LazyLock::new(|| {
    let body = format!(
        "{{\"error\":\"overloaded\",\"detail\":\"this server has max_connections open; retry in {CAP_RETRY_AFTER_SECS} s\"}}"
    );
    format!(
        "HTTP/1.1 503 Service Unavailable\r\ncontent-type: application/json\r\nretry-after: {CAP_RETRY_AFTER_SECS}\r\nconnection: close\r\ncontent-length: {}\r\n\r\n{body}",
        body.len()
    )
    .into_bytes()
});

/// Serves `app` on `listener` until `shutdown` resolves, with the bounds of `options` (see the
/// module doc); then drains as described there.
pub async fn serve_with(
    listener: TcpListener,
    app: Router,
    options: ServeOptions,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> io::Result<()> {
    let stats = Arc::new(ConnectionStats::default());
    let max = options.max_connections.max(1);
    stats
        .max
        .store(u64::try_from(max).unwrap_or(u64::MAX), Ordering::Relaxed);
    let service = TowerToHyperService::new(app.layer(axum::Extension(Arc::clone(&stats))));
    let options = Arc::new(options);
    let slots = Arc::new(Semaphore::new(max));
    let refusing = Arc::new(Semaphore::new(REFUSING));
    let (drain, draining) = watch::channel(false);
    let mut tasks = JoinSet::new();
    let mut shutdown = std::pin::pin!(shutdown);
    let mut failing: Option<(Duration, u64)> = None;
    loop {
        let accepted = tokio::select! {
            biased;
            () = &mut shutdown => break,
            // Reap finished connections, so the set holds only live ones.
            Some(_) = tasks.join_next(), if !tasks.is_empty() => continue,
            accepted = listener.accept() => accepted,
        };
        let stream = match accepted {
            Ok((stream, _)) => {
                if let Some((_, errors)) = failing.take() {
                    tracing::info!(errors, "accepting connections again");
                }
                stream
            }
            // The client went away before it was accepted: nothing to do.
            Err(e) if is_connection_error(&e) => continue,
            Err(e) => {
                // Out of file descriptors (or memory): the connection stays in the backlog;
                // retrying at once would spin. Pause, longer while it lasts.
                stats.accept_errors.fetch_add(1, Ordering::Relaxed);
                let (pause, errors) = match failing {
                    None => {
                        tracing::warn!(error = %e, "cannot accept connections; pausing");
                        (Duration::from_millis(10), 1)
                    }
                    Some((p, n)) => ((p * 2).min(Duration::from_millis(500)), n + 1),
                };
                failing = Some((pause, errors));
                tokio::select! {
                    () = &mut shutdown => break,
                    () = tokio::time::sleep(pause) => continue,
                }
            }
        };
        match Arc::clone(&slots).try_acquire_owned() {
            Ok(slot) => {
                tasks.spawn(connection(
                    stream,
                    service.clone(),
                    Arc::clone(&options),
                    Arc::clone(&stats),
                    draining.clone(),
                    slot,
                ));
            }
            Err(_) => {
                stats.refused.fetch_add(1, Ordering::Relaxed);
                if let Ok(permit) = Arc::clone(&refusing).try_acquire_owned() {
                    tasks.spawn(refuse(stream, permit));
                }
                // Else it is dropped, closed without an answer: refusals are flooding too.
            }
        }
    }
    // Stop accepting: new connections are refused by the kernel from here on.
    drop(listener);
    let _ = drain.send(true);
    let left = tasks.len();
    if left > 0 {
        tracing::info!(connections = left, "draining connections");
    }
    let deadline = tokio::time::sleep(options.drain_timeout);
    tokio::pin!(deadline);
    loop {
        tokio::select! {
            next = tasks.join_next() => if next.is_none() { break },
            () = &mut deadline => {
                tracing::warn!(
                    connections = tasks.len(),
                    "requests still in flight after the drain timeout; closing their connections"
                );
                tasks.shutdown().await;
                break;
            }
        }
    }
    Ok(())
}

/// Failures that concern one connection, not the listener (axum's list).
fn is_connection_error(e: &io::Error) -> bool {
    matches!(
        e.kind(),
        io::ErrorKind::ConnectionRefused
            | io::ErrorKind::ConnectionAborted
            | io::ErrorKind::ConnectionReset
    )
}

/// Serves one connection until it ends, times out, or the drain says stop.
async fn connection(
    stream: TcpStream,
    service: TowerToHyperService<Router>,
    options: Arc<ServeOptions>,
    stats: Arc<ConnectionStats>,
    mut draining: watch::Receiver<bool>,
    _slot: OwnedSemaphorePermit,
) {
    let _open = stats.opened();
    let watch = Arc::new(Watch::new(&options));
    let io = TokioIo::new(Watched::new(stream, Arc::clone(&watch)));
    let requests = {
        let watch = Arc::clone(&watch);
        hyper::service::service_fn(move |request| {
            let in_flight = watch.begin();
            let answer = service.call(request);
            async move {
                let response = answer.await;
                drop(in_flight);
                response
            }
        })
    };
    let mut http = http1::Builder::new();
    // The watchdog in `Watched` times headers and idleness (see the module doc).
    http.header_read_timeout(None)
        .keep_alive(true)
        .max_buf_size(MAX_BUF);
    let conn = http.serve_connection(io, requests);
    tokio::pin!(conn);
    let ended = tokio::select! {
        ended = conn.as_mut() => ended,
        () = drained(&mut draining) => {
            if watch.closable() {
                return;
            }
            // A request in flight: answer it, then close.
            conn.as_mut().graceful_shutdown();
            conn.await
        }
    };
    if let Some(why) = watch.expired() {
        stats.timed_out(why);
    } else if let Err(e) = ended {
        tracing::debug!(error = %e, "connection ended with an error");
    }
}

async fn drained(draining: &mut watch::Receiver<bool>) {
    // The sender gone means the server is gone: as good as draining.
    let _ = draining.wait_for(|d| *d).await;
}

/// Answers a connection past the cap with a 503 and closes it. The client's request may be
/// unread: closing over unread bytes resets the connection, which can destroy the answer
/// before the client reads it; so half-close, and read until the client closes (bounded).
async fn refuse(mut stream: TcpStream, _permit: OwnedSemaphorePermit) {
    let _ = tokio::time::timeout(LINGER, async {
        if stream.write_all(&REFUSAL).await.is_err() {
            return;
        }
        let _ = stream.shutdown().await;
        let mut sink = [0u8; 4096];
        let mut read = 0usize;
        while read < MAX_BUF {
            match stream.read(&mut sink).await {
                Ok(0) | Err(_) => break,
                Ok(n) => read += n,
            }
        }
    })
    .await;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_default_cap_stays_under_the_open_file_limit() {
        assert_eq!(cap_for(None), CONNECTION_CEILING);
        assert_eq!(cap_for(Some(1_048_576)), CONNECTION_CEILING);
        assert_eq!(cap_for(Some(1024)), 896);
        assert_eq!(cap_for(Some(256)), 128);
        assert_eq!(cap_for(Some(100)), 50);
        assert_eq!(cap_for(Some(0)), 1);
        let text = String::from_utf8_lossy(&REFUSAL);
        let (head, body) = text.split_once("\r\n\r\n").expect("a head and a body");
        assert!(head.contains(&format!("content-length: {}", body.len())));
        assert!(serde_json::from_str::<serde_json::Value>(body).is_ok());
    }
}
