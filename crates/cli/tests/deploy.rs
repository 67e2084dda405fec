//! The deployment files agree with the binary: the Helm chart renders to YAML whose ports and
//! probes are the server's, the compose file wires the same port and command, the Dockerfile
//! runs as non-root, and every surveyor.toml shipped there passes `surveyor validate`.

mod common;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde_json::Value;

fn deploy() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../deploy")
}

fn lookup<'a>(values: &'a Value, path: &str) -> Option<&'a Value> {
    path.split('.')
        .filter(|p| !p.is_empty())
        .try_fold(values, |v, p| v.get(p))
}

fn scalar(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        Value::Null => String::new(),
        other => other.to_string(),
    }
}

/// The chart's `appVersion` (what `.Chart.AppVersion` renders to).
fn app_version() -> String {
    let chart = yaml(
        &std::fs::read_to_string(deploy().join("helm/surveyor/Chart.yaml")).expect("Chart.yaml"),
    );
    scalar(&chart["appVersion"])
}

/// Renders the subset of Helm's templating the chart uses: `{{ .Values.x }}`,
/// `{{ .Release.Name }}`, `{{ .Values.x | indent N }}`,
/// `{{ .Values.x | default .Chart.AppVersion }}` and `{{- if .Values.x }}...{{- end }}`.
/// Anything else is an error, so the chart cannot drift into syntax this check ignores.
fn render(template: &str, values: &Value, release: &str) -> String {
    let mut out = String::new();
    let mut rest = template;
    let mut skipping: Vec<bool> = Vec::new();
    while let Some(start) = rest.find("{{") {
        let (before, after) = rest.split_at(start);
        let end = after.find("}}").expect("a closed action");
        let action = after[2..end].trim().trim_start_matches('-').trim();
        let mut text = before;
        if after[2..].starts_with('-') {
            text = text.trim_end_matches([' ', '\n']);
        }
        if !skipping.iter().any(|s| *s) {
            out.push_str(text);
        }
        rest = &after[end + 2..];
        if let Some(cond) = action.strip_prefix("if ") {
            let path = cond.trim().strip_prefix(".Values.").expect("if .Values.x");
            let on = lookup(values, path)
                .is_some_and(|v| !matches!(v, Value::Null | Value::Bool(false)));
            skipping.push(!on);
            continue;
        }
        if action == "end" {
            skipping.pop().expect("an if for every end");
            continue;
        }
        let (expr, filter) = match action.split_once('|') {
            Some((e, f)) => (e.trim(), Some(f.trim())),
            None => (action, None),
        };
        let value = if expr == ".Release.Name" {
            release.to_string()
        } else {
            let path = expr
                .strip_prefix(".Values.")
                .unwrap_or_else(|| panic!("unsupported {expr}"));
            scalar(lookup(values, path).unwrap_or_else(|| panic!("no value {path}")))
        };
        let value = match filter {
            None => value,
            Some("default .Chart.AppVersion") if value.is_empty() => app_version(),
            Some("default .Chart.AppVersion") => value,
            Some(f) => {
                let n: usize = f
                    .strip_prefix("indent ")
                    .and_then(|n| n.trim().parse().ok())
                    .unwrap_or_else(|| panic!("unsupported filter {f}"));
                value
                    .lines()
                    .map(|l| format!("{}{l}", " ".repeat(n)))
                    .collect::<Vec<_>>()
                    .join("\n")
            }
        };
        if !skipping.iter().any(|s| *s) {
            out.push_str(&value);
        }
    }
    out.push_str(rest);
    out
}

fn yaml(text: &str) -> Value {
    yaml_serde::from_str(text).unwrap_or_else(|e| panic!("{e}:\n{text}"))
}

fn validate(config: &str, env: &[(&str, &str)]) {
    let dir = tempfile::tempdir().expect("dir");
    std::fs::write(dir.path().join("surveyor.toml"), config).expect("write");
    std::fs::create_dir_all(dir.path().join("catalog")).expect("dir");
    // Offline: the database they name (compose's `db`, the chart's service) is not here.
    let out = common::surveyor_in(dir.path())
        .args(["validate", "--offline"])
        .envs(env.iter().copied())
        .output()
        .expect("run");
    common::assert_success(&out, &format!("\n{config}"));
}

#[test]
fn the_helm_chart_renders_with_the_servers_ports_and_probes() {
    let chart = deploy().join("helm/surveyor");
    let values = yaml(&std::fs::read_to_string(chart.join("values.yaml")).expect("values"));
    let port = values["service"]["port"].as_u64().expect("a port");
    let mut rendered: BTreeMap<String, Value> = BTreeMap::new();
    for entry in std::fs::read_dir(chart.join("templates")).expect("templates") {
        let path = entry.expect("entry").path();
        let text = render(
            &std::fs::read_to_string(&path).expect("read"),
            &values,
            "rel",
        );
        if !text.trim().is_empty() {
            let doc = yaml(&text);
            rendered.insert(doc["kind"].as_str().expect("a kind").to_string(), doc);
        }
    }
    assert!(!rendered.contains_key("ServiceMonitor"), "off by default");
    let deployment = &rendered["Deployment"];
    assert_eq!(deployment["spec"]["replicas"], values["replicaCount"]);
    let container = &deployment["spec"]["template"]["spec"]["containers"][0];
    // The image: a value, by default the Dockerfile's image at the chart's appVersion, which
    // is the binary's version.
    assert_eq!(values["image"]["repository"], "surveyor");
    assert_eq!(
        container["image"],
        format!("surveyor:{}", env!("CARGO_PKG_VERSION"))
    );
    assert_eq!(app_version(), env!("CARGO_PKG_VERSION"));
    let mut pinned = values.clone();
    pinned["image"]["repository"] = Value::String("registry.example.com/surveyor".into());
    pinned["image"]["tag"] = Value::String("1.2.3".into());
    let text = render(
        &std::fs::read_to_string(chart.join("templates/deployment.yaml")).expect("read"),
        &pinned,
        "rel",
    );
    assert_eq!(
        yaml(&text)["spec"]["template"]["spec"]["containers"][0]["image"],
        "registry.example.com/surveyor:1.2.3"
    );
    assert_eq!(container["ports"][0]["containerPort"].as_u64(), Some(port));
    assert_eq!(container["ports"][0]["name"], "http");
    assert_eq!(container["livenessProbe"]["httpGet"]["path"], "/healthz");
    assert_eq!(container["readinessProbe"]["httpGet"]["path"], "/readyz");
    assert_eq!(container["livenessProbe"]["httpGet"]["port"], "http");
    assert!(
        container["args"]
            .as_array()
            .expect("args")
            .iter()
            .any(|a| a == &Value::String(format!("0.0.0.0:{port}")))
    );
    assert_eq!(
        container["envFrom"][0]["secretRef"]["name"],
        values["existingSecret"]
    );
    assert_eq!(
        deployment["spec"]["template"]["spec"]["securityContext"]["runAsNonRoot"],
        true
    );
    let service = &rendered["Service"];
    assert_eq!(service["spec"]["ports"][0]["port"].as_u64(), Some(port));
    assert_eq!(service["spec"]["ports"][0]["targetPort"], "http");
    let config = rendered["ConfigMap"]["data"]["surveyor.toml"]
        .as_str()
        .expect("the config");
    validate(
        config,
        &[
            ("DATABASE_URL", "postgres://surveyor@db/surveyor"),
            ("SURVEYOR_TRIGGER_TOKEN", "t"),
            ("GITHUB_TOKEN", "g"),
        ],
    );

    let mut on = values.clone();
    on["serviceMonitor"]["enabled"] = Value::Bool(true);
    let text = render(
        &std::fs::read_to_string(chart.join("templates/servicemonitor.yaml")).expect("read"),
        &on,
        "rel",
    );
    let monitor = yaml(&text);
    assert_eq!(monitor["spec"]["endpoints"][0]["path"], "/metrics");
    assert_eq!(monitor["spec"]["endpoints"][0]["port"], "http");
}

#[test]
fn compose_and_dockerfile_agree_with_the_server() {
    let compose = yaml(&std::fs::read_to_string(deploy().join("compose.yaml")).expect("compose"));
    let surveyor = &compose["services"]["surveyor"];
    // The API is published on loopback unless SURVEYOR_BIND says otherwise.
    assert_eq!(
        surveyor["ports"][0],
        "${SURVEYOR_BIND:-127.0.0.1}:7878:7878"
    );
    assert_eq!(surveyor["command"][0], "serve");
    assert_eq!(surveyor["command"][2], "0.0.0.0:7878");
    assert_eq!(
        surveyor["depends_on"]["postgres"]["condition"],
        "service_healthy"
    );
    let config = std::fs::read_to_string(deploy().join("surveyor.toml")).expect("config");
    assert!(config.contains("listen = \"0.0.0.0:7878\""));
    validate(
        &config,
        &[
            ("DATABASE_URL", "postgres://surveyor@db/surveyor"),
            ("SURVEYOR_TRIGGER_TOKEN", "t"),
        ],
    );
    let docker = std::fs::read_to_string(deploy().join("Dockerfile")).expect("Dockerfile");
    assert!(docker.contains("EXPOSE 7878"));
    assert!(docker.contains("USER 65532"), "runs as non-root");
    assert!(docker.contains("cargo build --release --locked -p surveyor-cli"));
}

/// Secrets reach the container from deploy/.env only: the trigger token has no default (compose
/// refuses to start without one), every `${NAME}` the shipped configurations reference is in
/// deploy/env.example, and the image context leaves secrets and build output out.
#[test]
fn compose_takes_secrets_from_the_env_file_and_has_no_default_token() {
    let text = std::fs::read_to_string(deploy().join("compose.yaml")).expect("compose");
    assert!(!text.contains("change-me"), "no default token");
    let compose = yaml(&text);
    let surveyor = &compose["services"]["surveyor"];
    assert_eq!(surveyor["env_file"][0]["path"], ".env");
    assert_eq!(surveyor["env_file"][0]["required"], true);
    let trigger = scalar(&surveyor["environment"]["SURVEYOR_TRIGGER_TOKEN"]);
    assert!(
        trigger.starts_with("${SURVEYOR_TRIGGER_TOKEN:?"),
        "required, not defaulted: {trigger}"
    );
    for port in surveyor["ports"].as_array().expect("ports") {
        assert!(
            scalar(port).starts_with("${SURVEYOR_BIND:-127.0.0.1}:"),
            "published on loopback by default: {port}"
        );
    }
    assert!(
        compose["services"]["postgres"].get("ports").is_none(),
        "the database is not published"
    );

    let example = std::fs::read_to_string(deploy().join("env.example")).expect("env.example");
    let listed = |name: &str| {
        example.lines().any(|l| {
            l.trim_start_matches(['#', ' '])
                .strip_prefix(name)
                .is_some_and(|rest| rest.starts_with('='))
        })
    };
    let values =
        std::fs::read_to_string(deploy().join("helm/surveyor/values.yaml")).expect("values");
    let config = std::fs::read_to_string(deploy().join("surveyor.toml")).expect("config");
    let mut referenced = Vec::new();
    for text in [&values, &config] {
        for part in text.split("${").skip(1) {
            let name: String = part
                .chars()
                .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
                .collect();
            if !name.is_empty() && name != "ENV" {
                referenced.push(name);
            }
        }
    }
    assert!(referenced.iter().any(|n| n == "GITHUB_TOKEN"));
    for name in referenced {
        // Compose sets the database URL itself; everything else comes from the env file.
        if name != "DATABASE_URL" {
            assert!(listed(&name), "{name} is not in deploy/env.example");
        }
    }
    assert!(listed("SURVEYOR_TRIGGER_TOKEN"));

    let ignore = std::fs::read_to_string(deploy().join("../.dockerignore")).expect(".dockerignore");
    let lines: Vec<&str> = ignore.lines().map(str::trim).collect();
    for entry in [
        "target/",
        ".git/",
        "**/node_modules/",
        "deploy/.env",
        "*.db",
    ] {
        assert!(lines.contains(&entry), ".dockerignore lacks {entry}");
    }
}
