use super::*;

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

fn errors(text: &str) -> String {
    Config::parse(text, Path::new("surveyor.toml"), KINDS)
        .unwrap_err()
        .to_string()
}

#[test]
fn a_full_config_parses() {
    let c = Config::parse(
        r#"
[catalog]
database = "sqlite://cat.db"
retention = "7d"
max_delete_ratio = 0.5

[[connectors]]
id = "files"
kind = "file"
schedule = "*/15 * * * *"
paths = ["catalog/**/*.yaml"]

[[connectors]]
id = "gh"
kind = "github"
enabled = false
orgs = ["acme"]
"#,
        Path::new("conf/surveyor.toml"),
        KINDS,
    )
    .unwrap();
    assert_eq!(c.catalog.retention, Duration::from_secs(7 * 86_400));
    assert_eq!(c.catalog.max_delete_ratio, 0.5);
    assert_eq!(c.connectors.len(), 2);
    assert!(!c.connectors[1].enabled);
    assert_eq!(c.database_url().expose(), "sqlite://conf/cat.db");
    #[derive(serde::Deserialize)]
    #[serde(deny_unknown_fields)]
    struct Files {
        paths: Vec<String>,
    }
    let f: Files = c.connectors[0].options().unwrap();
    assert_eq!(f.paths, vec!["catalog/**/*.yaml"]);
}

#[test]
fn defaults_apply() {
    let c = Config::parse("", Path::new("s.toml"), KINDS).unwrap();
    assert_eq!(c.catalog.database.expose(), "sqlite://surveyor.db");
    assert_eq!(c.catalog.max_delete_ratio, 0.2);
    assert_eq!(c.catalog.retention, Duration::from_secs(30 * 86_400));
}

#[test]
fn unknown_keys_get_a_did_you_mean() {
    insta::assert_snapshot!(errors("[catalog]\ndatabse = \"sqlite://x.db\"\n"), @"surveyor.toml:2:1: catalog.databse: unknown key (did you mean `database`?)");
    insta::assert_snapshot!(errors("[[connectors]]\nid = \"f\"\nkind = \"file\"\npath = [\"a\"]\n"), @"surveyor.toml:4:1: connectors[0].path: unknown key (did you mean `paths`?)");
    insta::assert_snapshot!(errors("[catalogue]\n"), @"surveyor.toml:1:2: catalogue: unknown key (did you mean `catalog`?)");
}

#[test]
fn unknown_kind_and_missing_keys() {
    insta::assert_snapshot!(errors("[[connectors]]\nid = \"g\"\nkind = \"githib\"\n"), @r#"surveyor.toml:3:8: connectors[0].kind: unknown connector kind "githib" (did you mean `github`?)"#);
    insta::assert_snapshot!(errors("[[connectors]]\nkind = \"file\"\n"), @"surveyor.toml:1:1: connectors[0].id: missing key `id`");
    insta::assert_snapshot!(errors("[[connectors]]\nid = \"x\"\n"), @"surveyor.toml:1:1: connectors[0].kind: missing key `kind` (one of: file, github)");
}

#[test]
fn values_are_checked_where_they_are() {
    insta::assert_snapshot!(errors("[catalog]\nretention = \"30 days\"\n"), @r#"surveyor.toml:2:13: catalog.retention: invalid duration "30 days": unit must be one of s, m, h, d, w"#);
    insta::assert_snapshot!(errors("[catalog]\nmax_delete_ratio = 2\n"), @"surveyor.toml:2:20: catalog.max_delete_ratio: expected a number from 0.0 to 1.0");
    insta::assert_snapshot!(errors("[catalog]\ndatabase = \"mysql://x\"\n"), @"surveyor.toml:2:12: catalog.database: unsupported database URL (use sqlite://path.db or postgres://user@host/db)");
    insta::assert_snapshot!(errors("[[connectors]]\nid = \"f\"\nkind = \"file\"\nschedule = \"every minute\"\n"), @r#"surveyor.toml:4:12: connectors[0].schedule: invalid cron expression "every minute": Invalid pattern: Pattern must have between 5 and 7 fields. (5 fields (minute hour day month weekday) or 6 with seconds first)"#);
    insta::assert_snapshot!(errors("[[connectors]]\nid = \"bad id\"\nkind = \"file\"\nenabled = \"yes\"\n"), @r#"
    surveyor.toml:2:6: connectors[0].id: "bad id" is not a valid id: 1-63 characters of [a-zA-Z0-9] separated by [-_.]
    surveyor.toml:4:11: connectors[0].enabled: expected a boolean, found a string
    "#);
}

#[test]
fn duplicate_ids_and_bad_toml() {
    insta::assert_snapshot!(errors("[[connectors]]\nid = \"f\"\nkind = \"file\"\n[[connectors]]\nid = \"f\"\nkind = \"file\"\n"), @r#"surveyor.toml:5:6: connectors[1].id: duplicate connector id "f" (also connectors[0])"#);
    insta::assert_snapshot!(errors("[catalog\n"), @"surveyor.toml:1:9: catalog: invalid TOML: unclosed table, expected `]`");
}

#[test]
fn missing_env_var_names_the_variable_not_a_value() {
    let text = "[catalog]\ndatabase = \"postgres://u:${SURVEYOR_TEST_UNSET_VAR_42}@h/db\"\n";
    insta::assert_snapshot!(errors(text), @"surveyor.toml:2:12: catalog.database: environment variable SURVEYOR_TEST_UNSET_VAR_42 is not set");
}

#[test]
fn kind_options_errors_are_located() {
    let c = Config::parse(
        "[[connectors]]\nid = \"f\"\nkind = \"file\"\npaths = \"not-a-list\"\n",
        Path::new("surveyor.toml"),
        KINDS,
    )
    .unwrap();
    #[derive(Debug, serde::Deserialize)]
    #[allow(dead_code)]
    struct Files {
        paths: Vec<String>,
    }
    let e = c.connectors[0].options::<Files>().unwrap_err().to_string();
    insta::assert_snapshot!(e, @r#"surveyor.toml:4:9: connectors[0].paths: invalid type: string "not-a-list", expected a sequence"#);
}

#[test]
fn durations() {
    assert_eq!(parse_duration("90m").unwrap(), Duration::from_secs(5400));
    assert_eq!(
        parse_duration("2w").unwrap(),
        Duration::from_secs(14 * 86_400)
    );
    assert!(parse_duration("d").is_err());
    assert!(parse_duration("5y").is_err());
    assert!(
        parse_duration("300000000000000d").is_err(),
        "overflow is an error, not a wrap"
    );
    assert!(parse_duration("100000000d").is_err());
}

#[test]
fn identity_rules_parse_and_their_errors_are_located() {
    let c = Config::parse(
        r#"
[[identity]]
kinds = ["Component"]
separators = true
strip_suffixes = ["-service"]
aliases = { payments = ["pay", "payments-svc"] }
"#,
        Path::new("surveyor.toml"),
        KINDS,
    )
    .unwrap();
    let rule = &c.identity.rules[0];
    assert_eq!(rule.kinds, ["component"]);
    assert_eq!(rule.aliases["pay"], "payments");
    assert_eq!(
        c.identity.canonical("component", "Pay_Service").as_deref(),
        Some("payments")
    );
    let e = errors(
        "[[identity]]\nseparators = \"yes\"\naliases = { \"not valid!\" = [\"x\"] }\nfuzzy = true\n",
    );
    assert!(
        e.contains("surveyor.toml:2:14: identity[0].separators: expected a boolean"),
        "{e}"
    );
    assert!(e.contains("identity[0].aliases.\"not valid!\""), "{e}");
    assert!(e.contains("identity[0].fuzzy"), "{e}");
}

#[test]
fn merge_overrides_and_audit_options_parse_and_their_mistakes_are_located() {
    let base = r#"
[catalog]
database = "sqlite://cat.db"

[[connectors]]
id = "files"
kind = "file"
paths = ["a/*.yaml"]

[[connectors]]
id = "gh"
kind = "github"
orgs = ["acme"]
"#;
    let c = Config::parse(
        &format!(
            "{base}\n[merge]\n\"/spec/lifecycle\" = {{ sources = [\"GH\"] }}\n\"/metadata/description\" = {{ rule = \"precedence\" }}\n\n[audit]\ncosmetic = true\n"
        ),
        Path::new("surveyor.toml"),
        KINDS,
    )
    .unwrap();
    assert_eq!(c.merge.fields["/spec/lifecycle"].sources, ["gh"]);
    assert_eq!(
        c.merge.rule("/metadata/description"),
        crate::merge::MergeRule::Precedence
    );
    assert_eq!(
        c.merge.rule("/metadata/title"),
        crate::merge::MergeRule::Cosmetic
    );
    assert!(c.audit.cosmetic);

    let e = errors(&format!(
        "{base}\n[merge]\n\"/spec/lifecycle\" = {{ sources = [\"jira\"] }}\n\"/spec/type\" = {{ rule = \"newest\" }}\n\"spec/x\" = {{ rule = \"union\" }}\n\"/metadata/name\" = {{ rule = \"union\" }}\n\"/spec/y\" = \"union\"\n"
    ));
    assert!(
        e.contains("surveyor.toml:17:") && e.contains("merge.\"/spec/lifecycle\".sources[0]"),
        "{e}"
    );
    assert!(e.contains("no connector has id \"jira\""), "{e}");
    assert!(e.contains("unknown rule \"newest\""), "{e}");
    assert!(e.contains("is not a field"), "{e}");
    assert!(e.contains("names the entity"), "{e}");
    assert!(e.contains("expected a table"), "{e}");
    let e = errors(&format!("{base}\n[audit]\ncosmetic = \"yes\"\n"));
    assert!(
        e.contains("audit.cosmetic") && e.contains("expected a boolean"),
        "{e}"
    );
}

#[test]
fn a_config_nested_too_deep_is_an_error_not_a_stack_overflow() {
    let deep = format!(
        "[catalog]\ndatabase = \"sqlite://cat.db\"\n\n[server]\ncors_origins = {}\"x\"{}\n",
        "[".repeat(10_000),
        "]".repeat(10_000)
    );
    let e = errors(&deep);
    assert!(
        e.contains("surveyor.toml:5:")
            && e.contains("server.cors_origins")
            && e.contains("nested more than 64 levels deep"),
        "{e}"
    );
    // Brackets inside strings and comments are not nesting.
    let fine = format!(
        "# {}\n[catalog]\ndatabase = \"sqlite://cat.db\"\n\n[server]\nread_tokens = [\"{}\", '{}']\n",
        "[".repeat(100),
        "[".repeat(100),
        "{".repeat(100)
    );
    Config::parse(&fine, Path::new("surveyor.toml"), KINDS).expect("brackets in strings");
}

#[test]
fn origins_browsers_send_are_accepted() {
    for o in [
        "*",
        "http://localhost:3000",
        "https://portal.example.com",
        "https://[::1]:8443",
        "chrome-extension://abcdef",
    ] {
        assert!(super::origin_problem(o).is_none(), "{o}");
    }
    for o in ["", "null", "https://", "https://a b", "https://x.com:0"] {
        assert!(super::origin_problem(o).is_some(), "{o}");
    }
}

#[test]
fn database_urls_that_name_something_are_accepted() {
    for db in [
        "sqlite://cat.db",
        "sqlite:cat.db",
        "sqlite::memory:",
        "sqlite:///var/lib/surveyor/cat.db?mode=rwc",
        "postgres://surveyor@db:5432/catalog",
        "postgresql://db/catalog",
        "postgres:///catalog?host=/run/postgresql",
    ] {
        assert_eq!(super::database_url_problem(db), None, "{db}");
    }
    for db in [
        "sqlite://",
        "sqlite:",
        "sqlite://?mode=rwc",
        "postgres://",
        "postgres://user:pw@/db",
    ] {
        assert!(super::database_url_problem(db).is_some(), "{db}");
    }
}

#[test]
fn server_limits_parse_with_located_errors() {
    let c = Config::parse(
        "[server]\nheader_read_timeout = \"5s\"\nidle_timeout = \"2m\"\nmax_connections = 300\nmax_expensive_requests = 3\n",
        Path::new("surveyor.toml"),
        KINDS,
    )
    .unwrap();
    assert_eq!(c.server.header_read_timeout, Duration::from_secs(5));
    assert_eq!(c.server.idle_timeout, Duration::from_secs(120));
    assert_eq!(c.server.max_connections, Some(300));
    assert_eq!(c.server.max_expensive_requests, Some(3));
    let d = Config::parse("", Path::new("surveyor.toml"), KINDS).unwrap();
    assert_eq!(d.server.header_read_timeout, Duration::from_secs(10));
    assert_eq!(d.server.idle_timeout, Duration::from_secs(60));
    assert_eq!(d.server.max_connections, None, "derived by the server");
    assert_eq!(
        d.server.max_expensive_requests, None,
        "derived by the server"
    );
    insta::assert_snapshot!(errors("[server]\nheader_read_timeout = \"soon\"\nidle_timeout = \"0s\"\nmax_connections = 0\nmax_expensive_requests = \"4\"\n"), @r#"
    surveyor.toml:2:23: server.header_read_timeout: invalid duration "soon": expected a number and a unit, e.g. 30d, 12h, 90m
    surveyor.toml:3:16: server.idle_timeout: must be longer than 0s
    surveyor.toml:4:19: server.max_connections: 0 is outside 1..=1000000
    surveyor.toml:5:26: server.max_expensive_requests: expected a whole number, found a string
    "#);
}

#[test]
fn the_console_is_on_unless_turned_off() {
    let on = Config::parse("", Path::new("surveyor.toml"), KINDS).unwrap();
    assert!(on.server.console);
    let off = Config::parse(
        "[server]\nconsole = false\n",
        Path::new("surveyor.toml"),
        KINDS,
    )
    .unwrap();
    assert!(!off.server.console);
    insta::assert_snapshot!(errors("[server]\nconsole = \"no\"\n"), @"surveyor.toml:2:11: server.console: expected a boolean, found a string");
}

#[test]
fn classify_rules_parse_and_their_errors_name_the_key_and_line() {
    let base = "[catalog]\ndatabase = \"sqlite://cat.db\"\n";
    let defaults = Config::parse(base, Path::new("surveyor.toml"), KINDS).unwrap();
    assert_eq!(
        defaults.classify,
        surveyor_model::classify::ClassifyRules::default()
    );
    let c = Config::parse(
        &format!(
            "{base}\n[classify]\nproduction = [\"Live-EU\"]\ndefault_tier = \"bronze\"\n\n\
             [[classify.tier]]\ntier = \"Gold\"\nurgency = \"HIGH\"\nmin_replicas = 3\n\n\
             [[classify.tier]]\ntier = \"silver\"\non_call = true\n"
        ),
        Path::new("surveyor.toml"),
        KINDS,
    )
    .unwrap();
    assert_eq!(c.classify.production, ["live-eu"]);
    assert_eq!(c.classify.default_tier, "bronze");
    assert_eq!(
        c.classify.tiers.len(),
        2,
        "configured rules replace the defaults"
    );
    assert_eq!(c.classify.tiers[0].tier, "gold");
    assert_eq!(c.classify.tiers[0].urgency.as_deref(), Some("high"));
    assert_eq!(c.classify.tiers[0].min_replicas, Some(3));
    assert_eq!(c.classify.tiers[1].on_call, Some(true));

    let e = errors(&format!(
        "{base}\n[classify]\nproduktion = []\n\n[[classify.tier]]\ntier = \"tier 1\"\nurgency = \"urgent\"\n\
         min_replicas = -1\non_call = \"yes\"\n\n[[classify.tier]]\ntier = \"tier-2\"\n\n\
         [[classify.tier]]\nmin_dependents = 2\n"
    ));
    for (want, line) in [
        ("classify.produktion", 5),
        ("classify.tier[0].tier", 8),
        ("classify.tier[0].urgency", 9),
        ("classify.tier[0].min_replicas", 10),
        ("classify.tier[0].on_call", 11),
        ("classify.tier[1]", 13),
        ("classify.tier[2].tier", 16),
    ] {
        assert!(
            e.contains(&format!("surveyor.toml:{line}:")) && e.contains(want),
            "{want} at line {line}: {e}"
        );
    }
    assert!(e.contains("did you mean `production`?"), "{e}");
    assert!(e.contains("unknown urgency \"urgent\""), "{e}");
    assert!(e.contains("always holds"), "{e}");
}

#[test]
fn scorecards_parse_and_their_errors_name_the_key_and_line() {
    use surveyor_model::score::Test;
    let base = "[catalog]\ndatabase = \"sqlite://cat.db\"\n";
    let c = Config::parse(
        &format!(
            "{base}\n[[scorecards]]\nname = \"Readiness\"\nlevels = [\"bronze\", \"gold\"]\n\
             tier = [\"tier-1\"]\nlabel = \"env=prod\"\n\n\
             [[scorecards.checks]]\nname = \"owned\"\nlevel = \"bronze\"\nrelation = \"ownedBy\"\n\n\
             [[scorecards.checks]]\nname = \"log4j\"\nlevel = \"gold\"\n\
             dependency = \"maven:org.apache.logging.log4j:log4j-core >= 2.17.1\"\n\n\
             [[scorecards.checks]]\nname = \"lifecycle\"\nlevel = \"gold\"\nfield = \"spec.lifecycle\"\n\
             matches = \"prod*\"\n"
        ),
        Path::new("surveyor.toml"),
        KINDS,
    )
    .unwrap();
    let card = &c.scorecards[0];
    assert_eq!(
        (card.name.as_str(), card.title.as_str()),
        ("readiness", "readiness")
    );
    assert_eq!(card.levels, ["bronze", "gold"]);
    assert_eq!(card.applies_to.kind, "component");
    assert_eq!(card.applies_to.tiers, ["tier-1"]);
    assert_eq!(card.applies_to.label, Some(("env".into(), "prod".into())));
    assert_eq!(card.checks[0].test, Test::Relation("ownedBy".into()));
    assert_eq!(
        card.checks[1].test,
        Test::Dependency {
            ecosystem: Some("maven".into()),
            package: "org.apache.logging.log4j:log4j-core".into(),
            at_least: Some("2.17.1".into()),
        }
    );
    assert_eq!(
        card.checks[2].test,
        Test::Field {
            pointer: "/spec/lifecycle".into(),
            equals: None,
            matches: Some("prod*".into()),
        }
    );

    let e = errors(&format!(
        "{base}\n[[scorecards]]\nname = \"a\"\nlevels = [\"bronze\"]\n\n\
         [[scorecards.checks]]\nname = \"x\"\nlevel = \"gold\"\non_call = true\n\n\
         [[scorecards.checks]]\nname = \"y\"\nlevel = \"bronze\"\non_call = true\nlink = \"runbook\"\n\n\
         [[scorecards.checks]]\nname = \"z\"\nlevel = \"bronze\"\ndependency = \"npm:lodash\"\n\n\
         [[scorecards.checks]]\nname = \"w\"\nlevel = \"bronze\"\n\n\
         [[scorecards]]\nname = \"a\"\nlevels = []\nchecks = []\n"
    ));
    for (want, line) in [
        ("scorecards[0].checks[0].level", 10),
        ("scorecards[0].checks[1].link", 17),
        ("scorecards[0].checks[2].dependency", 22),
        ("scorecards[0].checks[3]", 24),
        ("scorecards[1].name", 29),
        ("scorecards[1].levels", 30),
    ] {
        assert!(
            e.contains(&format!("surveyor.toml:{line}:")) && e.contains(want),
            "{want} at line {line}: {e}"
        );
    }
    assert!(e.contains("not one of the scorecard's levels"), "{e}");
    assert!(e.contains("a check makes one test"), "{e}");
    assert!(e.contains("give the lowest version allowed"), "{e}");
    assert!(e.contains("a check needs one test"), "{e}");
    assert!(e.contains("a second scorecard named \"a\""), "{e}");
    assert!(e.contains("needs at least one level"), "{e}");
}
