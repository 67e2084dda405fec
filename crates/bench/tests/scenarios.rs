//! Every benchmark scenario at a tiny size: it runs, and its JSON report has the expected
//! fields with sane values (request floors, zero writes on a quiet resync, zero API errors).
//! Nothing here looks at how fast anything was.

use std::path::Path;
use std::process::Command;

use serde_json::Value;

/// Runs `surveyor-bench <args> --json <tmp>` and returns the report.
fn run(args: &[&str]) -> Value {
    let dir = tempfile::tempdir().expect("temp dir");
    let json = dir.path().join("report.json");
    let out = Command::new(env!("CARGO_BIN_EXE_surveyor-bench"))
        .args(args)
        .arg("--json")
        .arg(&json)
        .output()
        .expect("run surveyor-bench");
    assert!(
        out.status.success(),
        "surveyor-bench {args:?} failed: {}\nstdout:\n{}\nstderr:\n{}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(stdout.contains("== "), "a table is printed: {stdout}");
    let report = read(&json);
    assert_eq!(report["scenario"], args[0]);
    let m = &report["machine"];
    assert!(m["cores"].as_u64().is_some_and(|c| c >= 1), "{m}");
    assert!(m["build"].is_string(), "{m}");
    assert!(report["date"].as_str().is_some_and(|d| d.starts_with("20")));
    assert!(report["wall_seconds"].as_f64().is_some_and(|s| s > 0.0));
    assert!(report["parameters"].is_object());
    report
}

fn read(path: &Path) -> Value {
    let text = std::fs::read_to_string(path).expect("the report was written");
    serde_json::from_str(&text).expect("the report is JSON")
}

fn u(v: &Value) -> u64 {
    v.as_u64().unwrap_or_else(|| panic!("not a count: {v}"))
}

fn f(v: &Value) -> f64 {
    v.as_f64().unwrap_or_else(|| panic!("not a number: {v}"))
}

fn backends(report: &Value) -> &Vec<Value> {
    let b = report["results"]["backends"]
        .as_array()
        .expect("results per backend");
    assert!(!b.is_empty(), "at least SQLite ran");
    assert_eq!(b[0]["backend"], "SQLite");
    b
}

#[test]
fn github_requests_counts_against_the_floor_and_backstage_line() {
    let r = run(&[
        "github-requests",
        "--repos",
        "150",
        "--teams",
        "30",
        "--people",
        "200",
        "--latency-ms",
        "0",
        "--requests-per-second",
        "1000",
    ]);
    let res = &r["results"];
    assert_eq!(res["status"], "succeeded", "{res}");
    // ceil(150/100) + ceil(30/100)
    assert_eq!(u(&res["floor"]), 3);
    let q = &res["requests"];
    assert_eq!(u(&q["graphql_repository_pages"]), 2);
    assert_eq!(u(&q["graphql_team_pages"]), 1);
    assert!(u(&q["graphql"]) >= u(&res["floor"]));
    assert!(u(&q["total"]) >= u(&q["graphql"]) + u(&q["rest"]));
    let b = &res["backstage"];
    assert_eq!(u(&b["repository_pages"]), 6, "ceil(150/25)");
    assert_eq!(u(&b["team_pages"]), 2, "ceil(30/25)");
    assert_eq!(u(&b["location_reads"]), u(&res["org"]["repos"]));
    let members = u(&res["org"]["org_members"]);
    assert_eq!(
        u(&res["floor_with_members"]),
        u(&res["floor"]) + members.div_ceil(100)
    );
    assert_eq!(u(&b["user_pages"]), members.div_ceil(50));
    assert_eq!(
        u(&b["total"]),
        u(&b["repository_pages"])
            + u(&b["location_reads"])
            + u(&b["team_pages"])
            + u(&b["team_member_pages"])
            + u(&b["user_pages"])
    );
    assert!(u(&b["total_descriptors_only"]) <= u(&b["total"]));
    assert!(u(&res["created"]) > 0);
}

#[test]
fn resync_writes_no_rows_and_gets_304s() {
    let r = run(&["resync", "--size", "small"]);
    for b in backends(&r) {
        let written = &b["rows_written"];
        assert_eq!(
            u(&written["total"]),
            0,
            "a quiet resync wrote rows: {written}"
        );
        assert!(u(&b["catalog_rows"]) > 0);
        let connectors = b["connectors"].as_array().expect("connectors");
        assert_eq!(connectors.len(), 5);
        for c in connectors {
            assert_eq!(c["resync_status"], "succeeded", "{c}");
            assert_eq!(u(&c["resync_changes"]), 0, "{c}");
            assert!(u(&c["full_requests"]) > 0, "{c}");
            assert!(u(&c["full_observed"]) > 0, "{c}");
        }
        let github = connectors
            .iter()
            .find(|c| c["connector"] == "github")
            .expect("github");
        assert!(
            u(&github["resync_not_modified"]) > 0,
            "GitHub's REST answers 304 on a quiet resync: {github}"
        );
        let share = f(&b["not_modified_share"]);
        assert!(share > 0.0 && share <= 1.0, "{share}");
        assert!(f(&b["resync_over_full"]) > 0.0);
    }
}

#[test]
fn reconcile_reports_the_floor_ratio_and_one_percent() {
    let r = run(&["reconcile", "--entities", "300", "--repeat", "1"]);
    for b in backends(&r) {
        assert!(f(&b["floor_s"]) > 0.0, "{b}");
        assert!(f(&b["initial_over_floor"]) > 0.0, "{b}");
        assert_eq!(u(&b["no_change_changes"]), 0, "{b}");
        // Every 100th entity changes owner.
        assert_eq!(u(&b["one_percent_updated"]), 3, "{b}");
        assert!(f(&b["peak_rss_mb"]) > 0.0, "{b}");
        assert_eq!(u(&b["runs"]), 1);
    }
}

#[test]
fn e2e_runs_every_connector() {
    let r = run(&["e2e", "--size", "small"]);
    for b in backends(&r) {
        let connectors = b["connectors"].as_array().expect("connectors");
        let ids: Vec<&str> = connectors
            .iter()
            .filter_map(|c| c["connector"].as_str())
            .collect();
        assert_eq!(ids, ["github", "gitlab", "k8s", "pagerduty", "jira"]);
        for c in connectors {
            assert_eq!(c["status"], "succeeded", "{c}");
            assert!(u(&c["observed"]) > 0, "{c}");
            assert!(u(&c["requests"]) > 0, "{c}");
        }
        let observed: u64 = connectors.iter().map(|c| u(&c["observed"])).sum();
        assert_eq!(u(&b["observed"]), observed);
        assert!(u(&b["entities"]) > 0);
        assert!(f(&b["observations_per_s_per_core"]) > 0.0);
        assert!(f(&b["cpu_s"]) > 0.0);
        assert!(f(&b["observations_per_cpu_s"]) > 0.0);
        assert!(f(&b["peak_rss_mb"]) > 0.0);
        // The fakes' own threads are counted apart, as part of the process's CPU.
        for c in connectors {
            let fakes = c["fakes_cpu_s"].as_f64().expect("fakes_cpu_s");
            assert!(fakes >= 0.0 && fakes <= f(&c["cpu_s"]) + 0.05, "{c}");
        }
        let share = b["fakes_cpu_share_pct"]
            .as_f64()
            .expect("fakes_cpu_share_pct");
        assert!((0.0..=100.0).contains(&share), "{b}");
    }
}

#[test]
fn api_answers_every_query_without_errors() {
    let r = run(&[
        "api",
        "--entities",
        "600",
        "--clients",
        "4",
        "--seconds",
        "1",
        "--console-seconds",
        "1",
    ]);
    for b in backends(&r) {
        let queries = b["queries"].as_object().expect("queries");
        assert_eq!(queries.len(), 4, "{b}");
        let mut phases: Vec<(String, &Value)> =
            queries.iter().map(|(k, v)| (k.clone(), v)).collect();
        phases.push(("mixed".into(), &b["mixed"]));
        // Every console page, after the audits were recorded.
        let console = b["console"].as_object().expect("console pages");
        assert_eq!(console.len(), 11, "{b}");
        phases.extend(console.iter().map(|(k, v)| (k.clone(), v)));
        for (name, l) in phases {
            assert_eq!(u(&l["errors"]), 0, "{name}: {l}");
            assert!(u(&l["requests"]) > 0, "{name}: {l}");
            assert!(f(&l["p50_ms"]) <= f(&l["p99_ms"]), "{name}: {l}");
        }
        // Every 100th of 600 entities changes owner.
        assert_eq!(u(&b["sync_updated"]), 6, "{b}");
    }
}

#[test]
fn load_counts_syncs_and_finds_no_errors() {
    let r = run(&[
        "load",
        "--size",
        "small",
        "--clients",
        "4",
        "--seconds",
        "2",
        "--mutate-every-ms",
        "300",
    ]);
    for b in backends(&r) {
        assert_eq!(u(&b["api"]["errors"]), 0, "{b}");
        assert!(u(&b["api"]["requests"]) > 0, "{b}");
        assert_eq!(u(&b["lock_errors"]), 0, "{b}");
        let syncs = &b["syncs"];
        assert!(u(&syncs["completed"]) >= 5, "{syncs}");
        let by = syncs["by_connector"].as_object().expect("by connector");
        for id in ["github", "gitlab", "k8s", "pagerduty", "jira"] {
            assert!(by.contains_key(id), "{id} ran: {syncs}");
        }
        assert!(u(&syncs["org_changes"]) > 0);
    }
}

#[test]
fn audit_holds_every_rule_to_what_the_small_org_planted() {
    let r = run(&["audit", "--size", "small"]);
    let sizes = r["results"]["sizes"].as_array().expect("results per size");
    assert_eq!(sizes.len(), 1);
    let s = &sizes[0];
    assert_eq!(s["size"], "small");
    let syncs = s["syncs"].as_array().expect("syncs");
    assert_eq!(syncs.len(), 2, "before and after the org's history");
    for sync in syncs {
        let statuses = sync.as_object().expect("statuses");
        assert_eq!(statuses.len(), 5, "{sync}");
        assert!(statuses.values().all(|v| v == "succeeded"), "{sync}");
    }
    assert!(!s["planted_faults"].as_array().expect("faults").is_empty());
    assert!(!s["history"].as_array().expect("history").is_empty());
    let rules = s["rules"].as_array().expect("rules");
    let names: Vec<&str> = rules.iter().filter_map(|x| x["rule"].as_str()).collect();
    assert_eq!(names.len(), 13, "{names:?}");
    for rule in [
        "no-owner",
        "owner-group-empty",
        "conflicting-owners",
        "declared-unseen",
    ] {
        assert!(names.contains(&rule), "{rule}");
    }
    for x in rules {
        let (planted, found, tp) = (u(&x["planted"]), u(&x["found"]), u(&x["true_positives"]));
        // The small org plants something for every rule.
        assert!(planted > 0, "{x}");
        assert!(tp <= planted.min(found), "{x}");
        assert_eq!(
            x["false_negatives"].as_array().map(Vec::len),
            Some((planted - tp) as usize),
            "{x}"
        );
        assert_eq!(
            x["false_positives"].as_array().map(Vec::len),
            Some((found - tp) as usize),
            "{x}"
        );
        let recall = f(&x["recall"]);
        assert!((recall - tp as f64 / planted as f64).abs() < 0.001, "{x}");
        if found > 0 {
            let precision = f(&x["precision"]);
            assert!((precision - tp as f64 / found as f64).abs() < 0.001, "{x}");
        }
        let below = recall < 1.0 || (found > 0 && f(&x["precision"]) < 0.95);
        assert_eq!(x["below_target"], below, "{x}");
    }
}

#[test]
fn http_abuse_measures_slow_connections_and_the_heavy_mix_on_both_servers() {
    let bounded = run(&[
        "http-abuse",
        "--entities",
        "200",
        "--connections",
        "5",
        "--header-read-timeout",
        "1",
        "--margin",
        "2",
        "--clients",
        "4",
        "--seconds",
        "2",
    ]);
    let res = &bounded["results"];
    let s = &res["slowloris"];
    assert_eq!(u(&s["connected"]), 10, "{s}");
    assert_eq!(u(&s["silent_open_at_end"]), 0, "{s}");
    assert_eq!(u(&s["half_header_open_at_end"]), 0, "{s}");
    let probes = s["probes"].as_array().expect("probes");
    assert!(!probes.is_empty(), "{s}");
    assert!(probes.iter().all(|p| p["status"] == 200), "{s}");
    let h = &res["heavy"];
    assert!(u(&h["all"]["ok"]) > 0, "{h}");
    assert_eq!(u(&h["all"]["errors"]), 0, "{h}");
    assert_eq!(h["by_query"].as_array().map(Vec::len), Some(3), "{h}");
    assert!(f(&h["peak_rss_mb"]) > 0.0, "{h}");
    assert!(res["stop_s"].is_number(), "the server stopped: {res}");

    // The server before the bounds closes none of them.
    let plain = run(&[
        "http-abuse",
        "--plain",
        "--no-heavy",
        "--entities",
        "200",
        "--connections",
        "5",
        "--header-read-timeout",
        "1",
        "--margin",
        "1",
    ]);
    let s = &plain["results"]["slowloris"];
    assert_eq!(
        u(&s["silent_open_at_end"]) + u(&s["half_header_open_at_end"]),
        10,
        "{s}"
    );
    assert!(plain["results"]["heavy"].is_null());
}

#[test]
fn grade_classifies_and_grades_every_generated_component() {
    let r = run(&[
        "grade",
        "--entities",
        "300",
        "--repeat",
        "1",
        "--no-postgres",
    ]);
    for b in backends(&r) {
        // Three scorecards grade every component.
        assert_eq!(u(&b["graded"]), 900, "{b}");
        assert!(f(&b["first_s"]) > 0.0 && f(&b["unchanged_s"]) > 0.0, "{b}");
        assert!(f(&b["unchanged_peak_rss_mb"]) > 0.0, "{b}");
    }
}
