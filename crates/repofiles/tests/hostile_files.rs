//! Hostile repository files: huge CODEOWNERS and manifests, deep nesting in every manifest
//! format, pathological patterns and invalid UTF-8 give a clear error with bounded memory
//! (measured by a peak-tracking allocator), never a panic or a stack overflow.

// The same peak-tracking allocator the surveyor-model hostile-input tests use.
#[path = "../../model/tests/support/peak_alloc.rs"]
mod peak_alloc;

use peak_alloc::{MB, PeakAlloc, peak_during, serial};
use surveyor_repofiles::codeowners::{
    MAX_CODEOWNERS_BYTES, MAX_CODEOWNERS_RULES, MAX_PATTERN_CHARS, MAX_PATTERN_NESTING,
};
use surveyor_repofiles::manifests::{MANIFEST_FILES, MAX_MANIFEST_BYTES};
use surveyor_repofiles::{CodeOwners, Flavor, Owner, parse_manifest, parse_manifest_bytes};

#[global_allocator]
static ALLOC: PeakAlloc = PeakAlloc;

/// Every manifest kind the crate parses.
const MANIFESTS: &[&str] = MANIFEST_FILES;

#[test]
fn a_50_mb_codeowners_is_refused_without_parsing() {
    let _serial = serial();
    let text = "* @acme/platform\n".repeat(50 * MB / 17);
    for flavor in [Flavor::GitHub, Flavor::GitLab] {
        let (c, peak) = peak_during(|| CodeOwners::parse(&text, flavor));
        assert_eq!(c.errors.len(), 1);
        assert!(
            c.errors[0]
                .message
                .contains(&MAX_CODEOWNERS_BYTES.to_string()),
            "{}",
            c.errors[0]
        );
        assert!(c.repo_owners().is_empty());
        assert!(peak < MB, "refusing allocated {peak} bytes");
        let (c, peak) = peak_during(|| CodeOwners::parse_bytes(text.as_bytes(), flavor));
        assert!(c.errors[0].message.contains("larger than"));
        assert!(peak < MB, "refusing allocated {peak} bytes");
    }
}

#[test]
fn a_codeowners_at_the_size_limit_is_refused_by_rule_count_in_bounded_memory() {
    let _serial = serial();
    // 3 MB of short rules is some 170,000 of them; compiled, that was over a gigabyte.
    let mut text = String::new();
    let mut i = 0;
    while text.len() < MAX_CODEOWNERS_BYTES - 64 {
        text.push_str(&format!("/d{i}/ @o{i}\n"));
        i += 1;
    }
    let (c, peak) = peak_during(|| CodeOwners::parse(&text, Flavor::GitHub));
    assert_eq!(c.errors.len(), 1, "{:?}", c.errors.first());
    assert_eq!(c.errors[0].line, MAX_CODEOWNERS_RULES + 1);
    assert_eq!(
        c.errors[0].message,
        format!("more than {MAX_CODEOWNERS_RULES} rules; the file is ignored")
    );
    assert!(
        c.owners_of("d0/x").is_empty(),
        "an ignored file assigns no owners"
    );
    eprintln!(
        "{i} CODEOWNERS rules in {} bytes: peak heap {} MB while refusing",
        text.len(),
        peak / MB
    );
    assert!(peak < 128 * MB, "peak heap {peak} bytes");
}

#[test]
fn the_most_rules_allowed_parse_in_bounded_memory() {
    let _serial = serial();
    // Patterns that need a regex, the costly kind.
    let text: String = (0..MAX_CODEOWNERS_RULES)
        .map(|i| format!("src/*/x{i}*y/ @o{i}\n"))
        .collect();
    let (c, peak) = peak_during(|| CodeOwners::parse(&text, Flavor::GitLab));
    assert!(c.errors.is_empty(), "{:?}", c.errors.first());
    assert_eq!(
        c.owners_of("src/a/x9999zy/f.rs"),
        vec![Owner::User("o9999".into())]
    );
    eprintln!(
        "{MAX_CODEOWNERS_RULES} regex rules: peak heap {} MB",
        peak / MB
    );
    assert!(peak < 256 * MB, "peak heap {peak} bytes");
}

#[test]
fn pathological_patterns_are_skipped_with_a_reason() {
    let _serial = serial();
    // 5,000 nested `{a,{a,...}}` overflowed the stack in the glob parser and aborted the whole
    // process; the length limit alone now keeps that out, the nesting limit keeps short ones out.
    let deep_braces = format!("{}x{} @a\n", "{a,".repeat(20), "}".repeat(20));
    let long = format!("{}x @a\n", "*a".repeat(MAX_PATTERN_CHARS));
    for (text, reason) in [
        (
            deep_braces,
            format!("nested more than {MAX_PATTERN_NESTING} deep"),
        ),
        (long, format!("longer than {MAX_PATTERN_CHARS} characters")),
    ] {
        for flavor in [Flavor::GitHub, Flavor::GitLab] {
            let c = CodeOwners::parse(&format!("* @root\n{text}"), flavor);
            assert_eq!(c.errors.len(), 1, "{:?}", c.errors);
            assert_eq!(c.errors[0].line, 2);
            assert!(c.errors[0].message.contains(&reason), "{}", c.errors[0]);
            assert_eq!(c.repo_owners(), vec![Owner::User("root".into())]);
        }
    }
    // Within the limits, heavy patterns compile and match (the regex engine is linear-time).
    let heavy = format!(
        "{}x @a\n{}{}/ @b\n{} @c\n",
        "*a".repeat(MAX_PATTERN_CHARS / 2 - 1),
        "{b,".repeat(MAX_PATTERN_NESTING),
        "}".repeat(MAX_PATTERN_NESTING),
        "**/".repeat(300)
    );
    for flavor in [Flavor::GitHub, Flavor::GitLab] {
        let c = CodeOwners::parse(&heavy, flavor);
        assert!(c.errors.is_empty(), "{:?}", c.errors);
        let _ = c.owners_of(&"a".repeat(10_000));
        assert_eq!(c.owners_of("b/c"), vec![Owner::User("c".into())]);
    }
}

#[test]
fn invalid_utf8_in_codeowners_names_the_line() {
    let _serial = serial();
    let bytes = b"* @acme/platform\n/docs/ @caf\xe9\n";
    let c = CodeOwners::parse_bytes(bytes, Flavor::GitHub);
    assert_eq!(c.errors.len(), 1);
    assert_eq!(c.errors[0].line, 2);
    assert_eq!(c.errors[0].message, "not valid UTF-8: byte 0xe9 on line 2");
    assert!(
        c.repo_owners().is_empty(),
        "an unreadable file assigns no owners"
    );
    // Decoded lossily by a careless caller, the bad owner is a skipped line, not a panic.
    let lossy = String::from_utf8_lossy(bytes);
    let c = CodeOwners::parse(&lossy, Flavor::GitHub);
    assert_eq!(c.errors.len(), 1);
    assert_eq!(c.repo_owners(), vec![Owner::Team("acme/platform".into())]);
}

#[test]
fn a_50_mb_manifest_is_refused_without_parsing() {
    let _serial = serial();
    let text = format!(
        "{{\"name\": \"x\", \"description\": \"{}\"}}",
        "a".repeat(50 * MB)
    );
    for path in MANIFESTS {
        let (r, peak) = peak_during(|| parse_manifest(path, &text));
        let e = r.expect_err("too large");
        assert_eq!(e.file, *path);
        assert!(e.message.contains(&MAX_MANIFEST_BYTES.to_string()), "{e}");
        assert!(peak < MB, "{path}: refusing allocated {peak} bytes");
        let (r, peak) = peak_during(|| parse_manifest_bytes(path, text.as_bytes()));
        assert!(r.expect_err("too large").message.contains("larger than"));
        assert!(peak < MB, "{path}: refusing allocated {peak} bytes");
    }
}

#[test]
fn deeply_nested_manifests_are_errors_not_stack_overflows() {
    let _serial = serial();
    let depth = 100_000;
    let cases = [
        (
            "package.json",
            format!(
                "{{\"dependencies\": {}{}}}",
                "[".repeat(depth),
                "]".repeat(depth)
            ),
        ),
        (
            "Cargo.toml",
            format!(
                "[package]\nname = \"x\"\nx = {}{}\n",
                "[".repeat(depth),
                "]".repeat(depth)
            ),
        ),
        (
            "pyproject.toml",
            format!(
                "[project]\nname = \"x\"\nx = {}1{}\n",
                "{a = ".repeat(depth),
                "}".repeat(depth)
            ),
        ),
        (
            "pom.xml",
            format!(
                "<project>{}{}</project>",
                "<a>".repeat(depth),
                "</a>".repeat(depth)
            ),
        ),
    ];
    for (path, text) in cases {
        assert!(text.len() <= MAX_MANIFEST_BYTES);
        let (r, peak) = peak_during(|| parse_manifest(path, &text));
        match r {
            Ok(m) => assert!(m.dependencies.is_empty(), "{path}: {m:?}"),
            Err(e) => assert!(!e.message.is_empty(), "{path}"),
        }
        assert!(peak < 256 * MB, "{path}: peak heap {peak} bytes");
    }
}

#[test]
fn invalid_utf8_in_manifests_names_the_line() {
    let _serial = serial();
    for path in MANIFESTS {
        let bytes = b"line one\nline two \xff\xfe\n";
        let e = parse_manifest_bytes(path, bytes).expect_err("not UTF-8");
        assert_eq!(e.file, *path);
        assert_eq!(e.message, "not valid UTF-8: byte 0xff on line 2");
        assert_eq!(
            e.to_string(),
            format!("{path}: not valid UTF-8: byte 0xff on line 2")
        );
    }
    let ok = parse_manifest_bytes("go.mod", b"module example.com/x\nrequire a.b/c v1.0.0\n")
        .expect("valid UTF-8 parses");
    assert_eq!(ok.dependencies.len(), 1);
}

#[test]
fn huge_lines_and_unterminated_blocks_are_bounded() {
    let _serial = serial();
    let long_req = format!("{}==1.0\n", "a".repeat(MB));
    let (m, peak) = peak_during(|| parse_manifest("requirements.txt", &long_req));
    let m = m.expect("a long name is still a name");
    assert_eq!(m.dependencies[0].package.len(), MB);
    assert!(peak < 32 * MB, "peak heap {peak} bytes");
    let go = format!("module x\nrequire (\n{}", "  a.b/c v1\n".repeat(100_000));
    let e = parse_manifest("go.mod", &go).expect_err("unterminated");
    assert!(e.message.contains("unterminated"), "{e}");
    // Maven properties that refer to each other in a loop resolve a bounded number of times.
    let pom = "<project><groupId>g</groupId><artifactId>a</artifactId><properties><a>${b}</a><b>${a}</b></properties><dependencies><dependency><groupId>g</groupId><artifactId>x</artifactId><version>${a}</version></dependency></dependencies></project>";
    let (m, peak) = peak_during(|| parse_manifest("pom.xml", pom).expect("parses"));
    assert_eq!(m.dependencies.len(), 1);
    assert!(m.dependencies[0].requirement.contains("${"));
    assert!(peak < MB);
}

#[test]
fn non_ascii_python_requirements_are_errors_not_panics() {
    let _serial = serial();
    // pep508_rs 0.9.2 slices lines at character counts as if they were byte offsets, in its
    // error formatting and its marker parser; these lines panicked (found by cargo-fuzz in
    // requirements.txt and pyproject.toml), and non-ASCII requirements are now refused first.
    for line in [
        "flask>=2 ; python_version >\"8.\"=r\u{c5}b\"y",
        "flask\u{c5}\u{c5}\u{c5}>=2",
        "requests==2.31 ; \u{c5}\u{c5}\u{c5}\u{c5}\u{c5}",
    ] {
        let e = parse_manifest("requirements.txt", &format!("{line}\n")).expect_err("invalid");
        assert!(e.message.contains("'\u{c5}' is not ASCII"), "{e}");
        assert!(!e.message.contains('\n'), "one line: {e}");
        let pyproject = format!("[project]\nname = \"x\"\ndependencies = ['{line}']\n");
        let e = parse_manifest("pyproject.toml", &pyproject).expect_err("invalid");
        assert!(e.message.contains("is not ASCII"), "{e}");
    }
}

#[test]
fn python_lines_that_crashed_the_requirement_parser_are_errors() {
    let _serial = serial();
    // pep508_rs 0.9.2 panics on a name or extra ending in `.`, `-` or `_` followed by more text.
    for (line, what) in [
        ("l_ x", "package name \"l_\""),
        ("y[1ex.a- base.txt", "extra \"1ex.a-\""),
    ] {
        let e = parse_manifest("requirements.txt", &format!("{line}\n")).expect_err("invalid");
        assert!(e.message.contains(what), "{e}");
    }
    let m = parse_manifest("requirements.txt", "y[a-b, c]>=1\n").expect("valid extras");
    assert_eq!(m.dependencies[0].package, "y");
    // An empty project name produces no package (it would match every nameless lookup).
    let m = parse_manifest("pyproject.toml", "[project]\nname = \"\"\n").expect("parses");
    assert!(m.produces.is_empty(), "{m:?}");
}
