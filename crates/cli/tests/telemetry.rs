//! Logs as JSON lines, and traces exported over OTLP/HTTP to a collector when configured: a
//! local listener stands in for the collector and records what arrives.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpListener;
use std::sync::{Arc, Mutex};

/// (path, content type, body) of every request the fake collector received.
type Received = Arc<Mutex<Vec<(String, String, Vec<u8>)>>>;

fn collector() -> (String, Received) {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
    let url = format!("http://{}", listener.local_addr().expect("addr"));
    let received: Received = Arc::default();
    let sink = Arc::clone(&received);
    std::thread::spawn(move || {
        for stream in listener.incoming().flatten() {
            let mut reader = BufReader::new(stream);
            let mut request_line = String::new();
            if reader.read_line(&mut request_line).is_err() {
                continue;
            }
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
            }
            let mut body = vec![0; length];
            let _ = reader.read_exact(&mut body);
            let path = request_line
                .split_whitespace()
                .nth(1)
                .unwrap_or("")
                .to_string();
            sink.lock().expect("lock").push((path, content_type, body));
            let _ = reader
                .get_mut()
                .write_all(b"HTTP/1.1 200 OK\r\ncontent-length: 0\r\nconnection: close\r\n\r\n");
        }
    });
    (url, received)
}

#[test]
fn a_sync_exports_its_spans_and_logs_json_lines() {
    let (endpoint, received) = collector();
    let dir = tempfile::tempdir().expect("dir");
    std::fs::create_dir_all(dir.path().join("catalog")).expect("dir");
    std::fs::write(
        dir.path().join("catalog/a.yaml"),
        "apiVersion: backstage.io/v1alpha1\nkind: Component\nmetadata:\n  name: a\nspec:\n  type: service\n  lifecycle: production\n  owner: team-a\n",
    )
    .expect("write");
    std::fs::write(
        dir.path().join("surveyor.toml"),
        format!(
            "[catalog]\ndatabase = \"sqlite://c.db\"\n\n[telemetry]\notlp_endpoint = \"{endpoint}\"\nservice_name = \"surveyor-test\"\n\n\
             [[connectors]]\nid = \"files\"\nkind = \"file\"\npaths = [\"catalog/*.yaml\"]\n"
        ),
    )
    .expect("config");
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_surveyor"))
        .current_dir(dir.path())
        .args(["sync", "--log", "info", "--log-format", "json"])
        .env_remove("SURVEYOR_CONFIG")
        .output()
        .expect("run");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let stderr = String::from_utf8_lossy(&out.stderr);
    let json_lines: Vec<serde_json::Value> = stderr
        .lines()
        .filter_map(|l| serde_json::from_str(l).ok())
        .collect();
    assert!(
        json_lines.iter().any(|l| l["level"] == "INFO"),
        "JSON log lines: {stderr}"
    );
    let got = received.lock().expect("lock").clone();
    let traces: Vec<&(String, String, Vec<u8>)> =
        got.iter().filter(|(p, _, _)| p == "/v1/traces").collect();
    assert!(!traces.is_empty(), "spans were exported: {got:?}");
    assert_eq!(traces[0].1, "application/x-protobuf");
    let body: Vec<u8> = traces.iter().flat_map(|(_, _, b)| b.clone()).collect();
    let contains = |needle: &[u8]| body.windows(needle.len()).any(|w| w == needle);
    assert!(
        contains(b"surveyor-test"),
        "the service name travels with the spans"
    );
    assert!(
        contains(b"run") && contains(b"scope"),
        "run and scope spans"
    );
}
