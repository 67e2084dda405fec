//! Shared by the binary's end-to-end tests: the binary run in a directory, a free port, and a
//! stand-in OTLP collector.
//! Each test file uses what it needs of this.
#![allow(dead_code)]

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpListener;
use std::path::Path;
use std::process::{Command, Output};
use std::sync::{Arc, Mutex};

/// The `surveyor` binary, run in `dir` and blind to a `SURVEYOR_CONFIG` the test runner has.
pub fn surveyor_in(dir: &Path) -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_surveyor"));
    c.current_dir(dir).env_remove("SURVEYOR_CONFIG");
    c
}

/// The `surveyor` binary run to its end in `dir` with `args` (see [`surveyor_in`]).
pub fn run_in(dir: &Path, args: &[&str]) -> Output {
    surveyor_in(dir).args(args).output().expect("run surveyor")
}

/// Asserts that the run succeeded; if not, shows its stderr followed by `context`.
pub fn assert_success(out: &Output, context: &str) {
    assert!(
        out.status.success(),
        "{}{context}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// A port on 127.0.0.1 that was free a moment ago.
pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free port")
}

/// One request the stand-in collector received.
#[derive(Debug, Clone)]
pub struct Received {
    pub path: String,
    pub content_type: String,
    pub body: Vec<u8>,
    /// The request as it came: request line, headers and body.
    pub raw: Vec<u8>,
}

/// A stand-in OTLP/HTTP collector on loopback: its URL, and every request it has received
/// (each answered `200`).
pub fn collector() -> (String, Arc<Mutex<Vec<Received>>>) {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
    let url = format!("http://{}", listener.local_addr().expect("addr"));
    let received: Arc<Mutex<Vec<Received>>> = Arc::default();
    let sink = Arc::clone(&received);
    std::thread::spawn(move || {
        for stream in listener.incoming().flatten() {
            let mut reader = BufReader::new(stream);
            let mut request_line = String::new();
            if reader.read_line(&mut request_line).is_err() {
                continue;
            }
            let mut raw = request_line.as_bytes().to_vec();
            let mut length = 0usize;
            let mut content_type = String::new();
            loop {
                let mut line = String::new();
                if reader.read_line(&mut line).is_err() || line.trim().is_empty() {
                    break;
                }
                let lower = line.to_ascii_lowercase();
                if let Some(v) = lower.strip_prefix("content-length:") {
                    length = v.trim().parse().unwrap_or(0);
                }
                if let Some(v) = lower.strip_prefix("content-type:") {
                    content_type = v.trim().to_string();
                }
                raw.extend_from_slice(line.as_bytes());
            }
            let mut body = vec![0; length];
            let _ = reader.read_exact(&mut body);
            raw.extend_from_slice(&body);
            let path = request_line
                .split_whitespace()
                .nth(1)
                .unwrap_or("")
                .to_string();
            sink.lock().expect("lock").push(Received {
                path,
                content_type,
                body,
                raw,
            });
            let _ = reader
                .get_mut()
                .write_all(b"HTTP/1.1 200 OK\r\ncontent-length: 0\r\nconnection: close\r\n\r\n");
        }
    });
    (url, received)
}
