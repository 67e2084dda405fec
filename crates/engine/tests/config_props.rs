//! Property tests (proptest, in CI) mirroring the fuzz target `config`: any text gives a
//! configuration or located errors, never a panic; a generated valid file parses to what it
//! says; and one bad value or syntax error anywhere is reported at that key's line, by name.

use std::path::Path;
use std::time::Duration;

use proptest::prelude::*;
use surveyor_engine::config::{Config, ConfigErrors, KindSpec};

const KINDS: &[KindSpec] = &[
    KindSpec {
        name: "file",
        keys: &["paths"],
    },
    KindSpec {
        name: "github",
        keys: &["orgs", "token"],
    },
];

fn parse(text: &str) -> Result<Config, ConfigErrors> {
    Config::parse(text, Path::new("props.toml"), KINDS)
}

fn check_errors_are_located(errors: &ConfigErrors, text: &str) -> Result<(), TestCaseError> {
    prop_assert!(!errors.0.is_empty());
    let lines = text.split('\n').count();
    for e in &errors.0 {
        prop_assert!(
            e.line >= 1 && e.line <= lines,
            "{} (file has {} lines)",
            e,
            lines
        );
        prop_assert!(e.column >= 1, "{}", e);
        prop_assert!(!e.message.is_empty(), "{}", e);
        prop_assert_eq!(e.file.as_path(), Path::new("props.toml"));
    }
    let order: Vec<(usize, usize)> = errors.0.iter().map(|e| (e.line, e.column)).collect();
    let mut sorted = order.clone();
    sorted.sort();
    prop_assert_eq!(order, sorted, "errors are in file order");
    Ok(())
}

/// Fragments of surveyor.toml, valid and not, so generated text reaches deep into the loader.
fn toml_ish() -> impl Strategy<Value = String> {
    let token = prop::sample::select(vec![
        "[catalog]\n",
        "[server]\n",
        "[telemetry]\n",
        "[[connectors]]\n",
        "[[identity]]\n",
        "[identity.aliases]\n",
        "[connectors.x]\n",
        "id = ",
        "kind = ",
        "\"file\"",
        "\"github\"",
        "paths = ",
        "[\"a/*.yaml\"]",
        "schedule = ",
        "\"*/5 * * * *\"",
        "timezone = ",
        "\"Europe/Berlin\"",
        "retention = ",
        "\"7d\"",
        "database = ",
        "\"${HOME}\"",
        "\"${NOPE_NOT_SET_42}\"",
        "listen = ",
        "\"0.0.0.0:1\"",
        "max_page_size = ",
        "18446744073709551616",
        "-1",
        "1.5",
        "true",
        "x = ",
        "{ a = 1 }",
        "= ",
        "\"",
        "'",
        "[",
        "]",
        "\n",
        " ",
        "#",
        "\u{e9}",
    ]);
    prop::collection::vec(token, 0..40).prop_map(|t| t.concat())
}

proptest! {
    #[test]
    fn any_text_gives_a_config_or_located_errors(text in prop_oneof![any::<String>(), toml_ish()]) {
        match parse(&text) {
            Ok(config) => {
                for spec in &config.connectors {
                    // The kind's own keys deserialize or give located errors too.
                    if let Err(e) = spec.options::<serde_json::Value>() {
                        check_errors_are_located(&e, &text)?;
                    }
                }
            }
            Err(errors) => check_errors_are_located(&errors, &text)?,
        }
    }
}

#[derive(Debug, Clone)]
struct Connector {
    kind: &'static str,
    schedule: Option<&'static str>,
    timezone: Option<&'static str>,
    enabled: bool,
    timeout_minutes: u64,
}

#[derive(Debug, Clone)]
struct Model {
    retention_days: u64,
    /// Tenths.
    ratio: u8,
    floor: u64,
    port: u16,
    page_size: u32,
    connectors: Vec<Connector>,
}

fn connector() -> impl Strategy<Value = Connector> {
    (
        prop::sample::select(vec!["file", "github"]),
        prop::option::of(prop::sample::select(vec![
            "*/15 * * * *",
            "0 3 * * 1-5",
            "30 0 */2 * * *",
        ])),
        prop::option::of(prop::sample::select(vec![
            "UTC",
            "local",
            "Europe/Berlin",
            "America/New_York",
        ])),
        any::<bool>(),
        1u64..600,
    )
        .prop_map(
            |(kind, schedule, timezone, enabled, timeout_minutes)| Connector {
                kind,
                schedule,
                timezone,
                enabled,
                timeout_minutes,
            },
        )
}

fn model() -> impl Strategy<Value = Model> {
    (
        1u64..3650,
        0u8..=10,
        0u64..1000,
        1u16..,
        1u32..100_000,
        prop::collection::vec(connector(), 0..4),
    )
        .prop_map(
            |(retention_days, ratio, floor, port, page_size, connectors)| Model {
                retention_days,
                ratio,
                floor,
                port,
                page_size,
                connectors,
            },
        )
}

/// A file being written line by line, with the dotted key of each value and the line it is on.
#[derive(Default)]
struct Rendered {
    lines: Vec<String>,
    keys: Vec<(String, usize)>,
}

impl Rendered {
    /// A line that holds no value: a comment, a table header or a blank.
    fn line(&mut self, text: impl Into<String>) {
        self.lines.push(text.into());
    }

    /// A line that sets `key`.
    fn value(&mut self, key: impl Into<String>, text: String) {
        self.lines.push(text);
        self.keys.push((key.into(), self.lines.len()));
    }
}

/// The file, and for each value written: its dotted key and the line it is on.
fn render(m: &Model) -> (String, Vec<(String, usize)>) {
    let mut r = Rendered::default();
    r.line("# generated");
    r.line("[catalog]");
    r.value(
        "catalog.retention",
        format!("retention = \"{}d\"", m.retention_days),
    );
    r.value(
        "catalog.max_delete_ratio",
        format!("max_delete_ratio = {}.{}", m.ratio / 10, m.ratio % 10),
    );
    r.value(
        "catalog.mass_delete_floor",
        format!("mass_delete_floor = {}", m.floor),
    );
    r.line("");
    r.line("[server]");
    r.value(
        "server.listen",
        format!("listen = \"127.0.0.1:{}\"", m.port),
    );
    r.value(
        "server.max_page_size",
        format!("max_page_size = {}", m.page_size),
    );
    for (i, c) in m.connectors.iter().enumerate() {
        let p = format!("connectors[{i}]");
        r.line("");
        r.line("[[connectors]]");
        r.value(format!("{p}.id"), format!("id = \"c{i}-{}\"", c.kind));
        r.value(format!("{p}.kind"), format!("kind = \"{}\"", c.kind));
        if let Some(s) = c.schedule {
            r.value(format!("{p}.schedule"), format!("schedule = \"{s}\""));
        }
        if let Some(tz) = c.timezone {
            r.value(format!("{p}.timezone"), format!("timezone = \"{tz}\""));
        }
        r.value(format!("{p}.enabled"), format!("enabled = {}", c.enabled));
        r.value(
            format!("{p}.timeout"),
            format!("timeout = \"{}m\"", c.timeout_minutes),
        );
        match c.kind {
            "file" => r.line("paths = [\"catalog/**/*.yaml\"]"),
            _ => r.line("orgs = [\"acme\"]"),
        }
    }
    let mut text = r.lines.join("\n");
    text.push('\n');
    (text, r.keys)
}

/// Values that are wrong for `key` (by its last segment), whatever else the file says.
fn bad_values(key: &str) -> Vec<&'static str> {
    match key.rsplit('.').next().unwrap_or_default() {
        "retention" => vec!["\"30 days\"", "30", "\"999999w\""],
        "max_delete_ratio" => vec!["1.5", "-0.1", "\"half\""],
        "mass_delete_floor" => vec!["-3", "\"2\"", "99999999999999999999"],
        "listen" => vec!["\"nowhere\"", "7878", "\"1.2.3.4:70000\""],
        "max_page_size" => vec!["0", "\"x\"", "4294967296"],
        "id" => vec!["\"bad id!\"", "5", "\"\""],
        "kind" => vec!["\"fil\"", "1"],
        "schedule" => vec!["\"* *\"", "\"61 * * * *\"", "[]"],
        "timezone" => vec!["\"Mars/Base\"", "false"],
        "enabled" => vec!["\"yes\"", "1"],
        "timeout" => vec!["\"0s\"", "\"10 minutes\"", "600"],
        _ => vec![],
    }
}

/// Breaks the TOML itself on one value's line.
const SYNTAX_ERRORS: &[&str] = &["oops", "\"unterminated", "= 1", "1 2"];

proptest! {
    #![proptest_config(ProptestConfig::with_cases(128))]

    #[test]
    fn a_generated_config_parses_to_what_it_says(m in model()) {
        let (text, _) = render(&m);
        let c = parse(&text).map_err(|e| TestCaseError::fail(format!("{e}\n{text}")))?;
        prop_assert_eq!(c.catalog.retention, Duration::from_secs(m.retention_days * 86_400));
        prop_assert_eq!(c.catalog.max_delete_ratio, f64::from(m.ratio) / 10.0);
        prop_assert_eq!(c.catalog.mass_delete_floor, m.floor);
        prop_assert_eq!(c.server.listen, format!("127.0.0.1:{}", m.port));
        prop_assert_eq!(c.server.max_page_size, m.page_size);
        prop_assert_eq!(c.connectors.len(), m.connectors.len());
        for (i, (spec, want)) in c.connectors.iter().zip(&m.connectors).enumerate() {
            prop_assert_eq!(&spec.id, &format!("c{i}-{}", want.kind));
            prop_assert_eq!(spec.kind.as_str(), want.kind);
            prop_assert_eq!(spec.schedule.as_deref(), want.schedule);
            prop_assert_eq!(spec.enabled, want.enabled);
            prop_assert_eq!(spec.timeout, Duration::from_secs(want.timeout_minutes * 60));
            prop_assert_eq!(spec.index, i);
            prop_assert!(spec.options::<serde_json::Value>().is_ok());
        }
    }

    #[test]
    fn one_bad_value_is_reported_at_its_key_and_line(m in model(), pick in any::<prop::sample::Index>(), bad in any::<prop::sample::Index>()) {
        let (text, keys) = render(&m);
        let (key, line) = pick.get(&keys).clone();
        let candidates = bad_values(&key);
        prop_assume!(!candidates.is_empty());
        let value = *bad.get(&candidates);
        let broken = replace_value(&text, line, value);
        let errors = parse(&broken).expect_err("a bad value is an error");
        check_errors_are_located(&errors, &broken)?;
        prop_assert!(
            errors.0.iter().any(|e| e.key == key && e.line == line),
            "no error at {}:{} for {} = {}:\n{}",
            key, line, key, value, errors
        );
    }

    #[test]
    fn a_syntax_error_is_reported_at_its_key_and_line(m in model(), pick in any::<prop::sample::Index>(), bad in any::<prop::sample::Index>()) {
        let (text, keys) = render(&m);
        let (key, line) = pick.get(&keys).clone();
        let value = *bad.get(SYNTAX_ERRORS);
        let broken = replace_value(&text, line, value);
        let errors = parse(&broken).expect_err("broken TOML is an error");
        prop_assert_eq!(errors.0.len(), 1);
        let e = &errors.0[0];
        prop_assert!(e.message.starts_with("invalid TOML"), "{}", e);
        prop_assert_eq!((&e.key, e.line), (&key, line), "{} = {}:\n{}", key, value, e);
    }
}

/// `text` with the value on 1-based line `line` (after ` = `) replaced by `value`.
fn replace_value(text: &str, line: usize, value: &str) -> String {
    text.split('\n')
        .enumerate()
        .map(|(i, l)| {
            if i + 1 == line {
                let (k, _) = l.split_once(" = ").unwrap_or((l, ""));
                format!("{k} = {value}")
            } else {
                l.to_string()
            }
        })
        .collect::<Vec<_>>()
        .join("\n")
}
