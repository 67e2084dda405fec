//! Logs as JSON lines, and traces exported over OTLP/HTTP to a collector when configured: a
//! local listener stands in for the collector and records what arrives.

mod common;

use common::{Received, collector};

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
    let out = common::surveyor_in(dir.path())
        .args(["sync", "--log", "info", "--log-format", "json"])
        .output()
        .expect("run");
    common::assert_success(&out, "");
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
    let traces: Vec<&Received> = got.iter().filter(|r| r.path == "/v1/traces").collect();
    assert!(!traces.is_empty(), "spans were exported: {got:?}");
    assert_eq!(traces[0].content_type, "application/x-protobuf");
    let body: Vec<u8> = traces.iter().flat_map(|r| r.body.clone()).collect();
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
