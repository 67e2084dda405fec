//! The OpenAPI document against the router and an independent validator: parameters where
//! they belong, every path parameter declared, every route documented, and a document that
//! `openapi-spec-validator` (Python, OpenAPI 3.1) accepts.

use std::collections::BTreeSet;
use std::path::PathBuf;
use std::process::Command;

use serde_json::Value;
use utoipa::OpenApi;

use crate::ApiDoc;

fn document() -> Value {
    serde_json::to_value(ApiDoc::openapi()).expect("the document serializes")
}

/// Every `(METHOD, path)` the router serves, read from `lib.rs`'s `.route(...)` calls: axum
/// cannot list a router's routes, and this keeps a route added there without documentation
/// from going unnoticed.
fn router_routes() -> BTreeSet<(String, String)> {
    let source: String = include_str!("lib.rs")
        .split_whitespace()
        .collect::<Vec<_>>()
        .join(" ");
    let mut out = BTreeSet::new();
    for call in source.split(".route(").skip(1) {
        let Some(rest) = call.trim_start().strip_prefix('"') else {
            continue;
        };
        let Some((path, rest)) = rest.split_once('"') else {
            continue;
        };
        let rest = rest.trim_start_matches([',', ' ']);
        let method = rest.split('(').next().unwrap_or("").trim().to_uppercase();
        out.insert((method, path.to_string()));
    }
    out
}

fn documented_routes(doc: &Value) -> BTreeSet<(String, String)> {
    let mut out = BTreeSet::new();
    for (path, item) in doc["paths"].as_object().expect("paths") {
        for method in item.as_object().expect("path item").keys() {
            out.insert((method.to_uppercase(), path.clone()));
        }
    }
    out
}

#[test]
fn every_route_of_the_router_is_documented_and_nothing_else() {
    let routes = router_routes();
    assert!(
        routes.len() >= 20
            && routes.contains(&("POST".into(), "/api/v1/connectors/{id}/sync".into())),
        "the routes were read from lib.rs: {routes:?}"
    );
    let documented = documented_routes(&document());
    let missing: Vec<_> = routes.difference(&documented).collect();
    let extra: Vec<_> = documented.difference(&routes).collect();
    assert!(
        missing.is_empty(),
        "routes without documentation: {missing:?}"
    );
    assert!(
        extra.is_empty(),
        "documented routes the router does not serve: {extra:?}"
    );
}

#[test]
fn parameters_are_where_the_handlers_read_them() {
    let doc = document();
    let mut checked = 0;
    for (path, item) in doc["paths"].as_object().expect("paths") {
        let in_path: BTreeSet<&str> = path
            .split('/')
            .filter_map(|s| s.strip_prefix('{').and_then(|s| s.strip_suffix('}')))
            .collect();
        for (method, op) in item.as_object().expect("path item") {
            let params: Vec<&Value> = op["parameters"].as_array().into_iter().flatten().collect();
            let declared: BTreeSet<&str> = params
                .iter()
                .filter(|p| p["in"] == "path")
                .filter_map(|p| p["name"].as_str())
                .collect();
            assert_eq!(
                declared, in_path,
                "{method} {path}: the path parameters declared are the path's"
            );
            for p in &params {
                if p["in"] == "path" {
                    assert_eq!(p["required"], true, "{method} {path}: {p}");
                }
                assert!(
                    p["schema"].is_object(),
                    "{method} {path}: {} has a schema",
                    p["name"]
                );
                checked += 1;
            }
        }
    }
    assert!(checked > 40, "only {checked} parameters");
    // Query parameters the handlers read, in the query.
    let changes = &doc["paths"]["/api/v1/changes"]["get"]["parameters"];
    let query: BTreeSet<&str> = changes
        .as_array()
        .expect("parameters")
        .iter()
        .filter(|p| p["in"] == "query")
        .filter_map(|p| p["name"].as_str())
        .collect();
    assert_eq!(
        query,
        BTreeSet::from(["since", "entity", "op", "order", "limit", "cursor"])
    );
    let filter = doc["paths"]["/api/catalog/entities"]["get"]["parameters"]
        .as_array()
        .expect("parameters")
        .iter()
        .find(|p| p["name"] == "filter")
        .cloned()
        .unwrap_or_default();
    assert_eq!(
        (&filter["in"], &filter["explode"]),
        (&Value::from("query"), &Value::from(true)),
        "{filter}"
    );
}

#[test]
fn answers_and_errors_have_schemas() {
    let doc = document();
    for (path, item) in doc["paths"].as_object().expect("paths") {
        for (method, op) in item.as_object().expect("path item") {
            for (status, r) in op["responses"].as_object().expect("responses") {
                assert!(
                    r["content"]
                        .as_object()
                        .is_some_and(|c| c.values().all(|m| m["schema"].is_object())),
                    "{method} {path} {status}: no body schema"
                );
            }
        }
    }
    let schemas = doc["components"]["schemas"].as_object().expect("schemas");
    for name in [
        "ErrorBody",
        "ChangePage",
        "RunView",
        "ConnectorView",
        "EntityDocument",
    ] {
        assert!(schemas.contains_key(name), "{name}");
    }
    // Tokens: everywhere but the probes.
    assert_eq!(doc["security"], serde_json::json!([{"bearer": []}]));
    assert_eq!(
        doc["components"]["securitySchemes"]["bearer"]["scheme"],
        "bearer"
    );
    for probe in ["/healthz", "/readyz"] {
        assert_eq!(
            doc["paths"][probe]["get"]["security"],
            serde_json::json!([{}]),
            "{probe} needs no token"
        );
    }
    // Every reference resolves.
    let text = doc.to_string();
    for r in text.split("\"$ref\":\"#/components/schemas/").skip(1) {
        let name = r.split('"').next().unwrap_or("");
        assert!(schemas.contains_key(name), "dangling $ref {name}");
    }
}

/// Where to write the document for the validator: `SURVEYOR_OPENAPI_OUT` if set (CI keeps the
/// file), else a temporary directory.
fn written_document() -> (PathBuf, Option<tempfile::TempDir>) {
    let text = serde_json::to_string_pretty(&document()).expect("serializes");
    let (path, dir) = match std::env::var_os("SURVEYOR_OPENAPI_OUT") {
        Some(p) => (PathBuf::from(p), None),
        None => {
            let dir = tempfile::tempdir().expect("temp dir");
            (dir.path().join("openapi.json"), Some(dir))
        }
    };
    if let Some(parent) = path.parent() {
        std::fs::create_dir_all(parent).expect("the document's directory");
    }
    std::fs::write(&path, text).expect("write the document");
    (path, dir)
}

#[test]
fn the_document_passes_an_independent_validator() {
    let (path, _dir) = written_document();
    let run = Command::new("openapi-spec-validator").arg(&path).output();
    let output = match run {
        Ok(o) => o,
        Err(e) => {
            let ci = std::env::var("CI").is_ok_and(|v| v == "true" || v == "1");
            assert!(
                !ci,
                "CI=true but openapi-spec-validator cannot run ({e}): `pip install openapi-spec-validator`"
            );
            eprintln!(
                "SKIPPED: openapi-spec-validator is not installed ({e}); \
                 `pip install openapi-spec-validator` to run this check (CI must)"
            );
            return;
        }
    };
    assert!(
        output.status.success(),
        "openapi-spec-validator refused {}:\n{}\n{}",
        path.display(),
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
}

#[test]
fn the_docs_page_renders_markdown_not_backticks() {
    let html = crate::docs::render(&document());
    let text_outside_tags: String = {
        let mut out = String::new();
        let mut in_tag = false;
        for c in html.chars() {
            match c {
                '<' => in_tag = true,
                '>' => in_tag = false,
                c if !in_tag => out.push(c),
                _ => {}
            }
        }
        out
    };
    assert!(
        !text_outside_tags.contains('`'),
        "raw backticks on the page: {}",
        text_outside_tags
            .lines()
            .find(|l| l.contains('`'))
            .unwrap_or("")
    );
    assert!(html.contains("<code>nextCursor</code>"));
    assert!(html.contains("id=\"schema-ChangePage\""));
    assert!(!html.contains("<script"));
}
