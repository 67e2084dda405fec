//! Hostile catalog-info.yaml: alias bombs, huge files, deep nesting and invalid UTF-8 give a
//! clear error with bounded memory (measured by a peak-tracking allocator), never a panic.

#[path = "support/peak_alloc.rs"]
mod peak_alloc;

use peak_alloc::{MB, PeakAlloc, peak_during, serial};
use surveyor_model::descriptor::{
    DescriptorError, Document, MAX_DESCRIPTOR_BYTES, MAX_DESCRIPTOR_DEPTH, MAX_DESCRIPTOR_VALUES,
    parse_descriptor_bytes, parse_descriptors,
};

#[global_allocator]
static ALLOC: PeakAlloc = PeakAlloc;

fn yaml_error(docs: &[Document]) -> &str {
    match docs.first().map(|d| &d.result) {
        Some(Err(DescriptorError::Yaml(m))) => m,
        other => panic!("expected a YAML error, got {other:?}"),
    }
}

/// `a: &a [x, ...]` then levels that each repeat the previous one `fan` times.
fn exponential_bomb(levels: usize, fan: usize) -> String {
    let mut text = format!("a0: &a0 [{}]\n", vec!["lol"; fan].join(", "));
    for i in 1..=levels {
        let refs = vec![format!("*a{}", i - 1); fan].join(", ");
        text.push_str(&format!("a{i}: &a{i} [{refs}]\n"));
    }
    text
}

#[test]
fn billion_laughs_is_refused_with_bounded_memory() {
    let _serial = serial();
    // 10^9 strings if expanded; the file is under 1 KB.
    let text = exponential_bomb(8, 10);
    assert!(text.len() < 1024);
    let (docs, peak) = peak_during(|| parse_descriptors(&text));
    let message = yaml_error(&docs);
    assert!(
        message.contains("repetition limit") || message.contains("expands to more than"),
        "{message}"
    );
    eprintln!("billion laughs: peak heap {} KB", peak / 1024);
    assert!(peak < 64 * MB, "peak heap {peak} bytes");
}

#[test]
fn quadratic_alias_blowup_is_refused_with_bounded_memory() {
    let _serial = serial();
    // One anchor of 20,000 items referenced 20,000 times: 4 * 10^8 values, each a String, from
    // a 220 KB file. The YAML library's repetition limit (100 jumps per event) allows every one
    // of these aliases, so only the value budget stops it.
    let items = vec!["x"; 20_000].join(",");
    let refs = vec!["*a"; 20_000].join(",");
    let text = format!(
        "apiVersion: backstage.io/v1alpha1\nkind: Component\nmetadata:\n  name: bomb\nspec:\n  base: &a [{items}]\n  copies: [{refs}]\n"
    );
    assert!(text.len() < 256 * 1024);
    let (docs, peak) = peak_during(|| parse_descriptors(&text));
    let message = yaml_error(&docs);
    assert!(
        message.contains(&format!(
            "expands to more than {MAX_DESCRIPTOR_VALUES} values"
        )),
        "{message}"
    );
    eprintln!("quadratic aliases: peak heap {} MB", peak / MB);
    assert!(peak < 128 * MB, "peak heap {peak} bytes");
}

#[test]
fn aliases_within_the_budget_still_work() {
    let _serial = serial();
    let text = "apiVersion: backstage.io/v1alpha1\nkind: Component\nmetadata:\n  name: a\n  labels: &l {tier: gold}\nspec:\n  owner: team-a\n  copy: *l\n";
    let docs = parse_descriptors(text);
    let entity = docs[0].result.as_ref().expect("valid");
    assert_eq!(entity.spec["copy"]["tier"], "gold");
}

#[test]
fn a_50_mb_file_is_refused_before_parsing() {
    let _serial = serial();
    let mut text = String::from(
        "apiVersion: backstage.io/v1alpha1\nkind: Component\nmetadata:\n  name: big\n  description: \"",
    );
    text.push_str(&"a".repeat(50 * MB));
    text.push_str("\"\n");
    let (docs, peak) = peak_during(|| parse_descriptors(&text));
    assert!(
        yaml_error(&docs).contains(&format!("limited to {MAX_DESCRIPTOR_BYTES}")),
        "{:?}",
        docs[0].result
    );
    assert!(peak < MB, "refusing allocated {peak} bytes");
    let (docs, _) = peak_during(|| parse_descriptor_bytes(text.as_bytes()));
    assert!(yaml_error(&docs).contains("limited to"));
}

#[test]
fn a_file_just_under_the_size_limit_is_refused_in_bounded_memory() {
    let _serial = serial();
    // The largest accepted file, all of it one flow list: the most YAML events per byte.
    // Counted before yaml_serde loads them (about 150 bytes each, 300 MB for this file).
    let items = MAX_DESCRIPTOR_BYTES / 2 - 64;
    let text = format!("k: [{}]\n", vec!["1"; items].join(","));
    assert!(text.len() <= MAX_DESCRIPTOR_BYTES);
    let (docs, peak) = peak_during(|| parse_descriptors(&text));
    assert_eq!(
        yaml_error(&docs),
        format!("more than {MAX_DESCRIPTOR_VALUES} values (at line 1)")
    );
    eprintln!(
        "4 MB flow list: peak heap {} KB while refusing it",
        peak / 1024
    );
    assert!(peak < 16 * MB, "peak heap {peak} bytes");
}

#[test]
fn a_large_valid_file_parses_in_memory_proportional_to_it() {
    let _serial = serial();
    // 2,000 entities of 20 values each: a big monorepo's catalog, well inside every limit.
    let doc = |i: usize| {
        format!(
            "apiVersion: backstage.io/v1alpha1\nkind: Component\nmetadata:\n  name: svc-{i}\n  tags: [a, b, c]\n  annotations:\n    example.com/x: \"{i}\"\nspec:\n  type: service\n  lifecycle: production\n  owner: team-{}\n  dependsOn: [component:svc-{}]\n",
            i % 40,
            i + 1
        )
    };
    let text: String = (0..2_000).map(|i| doc(i) + "---\n").collect();
    let (docs, peak) = peak_during(|| parse_descriptors(&text));
    assert_eq!(docs.len(), 2_000);
    assert!(docs.iter().all(|d| d.result.is_ok()));
    eprintln!(
        "{} KB of descriptors: peak heap {} MB",
        text.len() / 1024,
        peak / MB
    );
    assert!(
        peak < 40 * text.len(),
        "peak heap {peak} bytes for {} bytes",
        text.len()
    );
}

#[test]
fn deep_nesting_is_refused_before_the_yaml_parser_goes_quadratic() {
    let _serial = serial();
    // libyaml's scanner does work per token in proportion to the flow depth: before the depth
    // check, 80 KB of `{a: ` took over a second and 500 KB over a minute.
    let depth = 100_000;
    let flow = format!("{}{}", "[".repeat(depth), "]".repeat(depth));
    let mapping = format!("{}1{}", "{a: ".repeat(depth), "}".repeat(depth));
    let mut block = String::new();
    for i in 0..2_000 {
        block.push_str(&" ".repeat(i));
        block.push_str("a:\n");
    }
    for (text, line) in [(flow, 1), (mapping, 1), (block, MAX_DESCRIPTOR_DEPTH + 1)] {
        let (docs, peak) = peak_during(|| parse_descriptors(&text));
        assert_eq!(
            yaml_error(&docs),
            format!("nested more than {MAX_DESCRIPTOR_DEPTH} levels deep at line {line}")
        );
        assert_eq!(docs[0].line, Some(line));
        eprintln!("{} bytes nested: peak heap {} KB", text.len(), peak / 1024);
        assert!(peak < 16 * MB, "peak heap {peak} bytes");
    }
}

#[test]
fn nesting_up_to_the_limit_is_accepted() {
    let _serial = serial();
    // The document and spec are two levels; `levels` more are in the value.
    let with_depth = |depth: usize| {
        let levels = depth - 2;
        let value = format!("{}1{}", "{a: ".repeat(levels), "}".repeat(levels));
        format!(
            "apiVersion: backstage.io/v1alpha1\nkind: Component\nmetadata: {{name: deep}}\nspec: {{v: {value}}}\n"
        )
    };
    let docs = parse_descriptors(&with_depth(MAX_DESCRIPTOR_DEPTH));
    assert!(docs[0].result.is_ok(), "{:?}", docs[0].result);
    let docs = parse_descriptors(&with_depth(MAX_DESCRIPTOR_DEPTH + 1));
    assert!(
        yaml_error(&docs).contains("levels deep at line 4"),
        "{:?}",
        docs[0].result
    );
}

#[test]
fn invalid_utf8_is_a_clear_error_naming_the_line() {
    let _serial = serial();
    let mut bytes =
        b"apiVersion: backstage.io/v1alpha1\nkind: Component\nmetadata:\n  name: caf".to_vec();
    bytes.extend_from_slice(&[0xE9, b'\n']);
    let docs = parse_descriptor_bytes(&bytes);
    assert_eq!(docs.len(), 1);
    assert_eq!(docs[0].line, Some(4));
    assert_eq!(
        yaml_error(&docs),
        "not valid UTF-8: byte 0xe9 on line 4",
        "{:?}",
        docs[0].result
    );
    // The same bytes, decoded lossily by a careless caller, are an invalid name, not a panic.
    let lossy = String::from_utf8_lossy(&bytes);
    let docs = parse_descriptors(&lossy);
    assert_eq!(
        docs[0].result.as_ref().unwrap_err().field(),
        Some("metadata.name")
    );
}

#[test]
fn many_documents_share_one_budget() {
    let _serial = serial();
    // Each document alone is fine; together they expand past the file's budget.
    let doc = format!(
        "apiVersion: backstage.io/v1alpha1\nkind: Component\nmetadata:\n  name: d\nspec:\n  base: &a [{}]\n  copies: [{}]\n---\n",
        vec!["x"; 100].join(","),
        vec!["*a"; 100].join(",")
    );
    let per_doc = 100 * 101;
    let n = MAX_DESCRIPTOR_VALUES / per_doc + 2;
    let text = doc.repeat(n);
    let docs = parse_descriptors(&text);
    let last = docs.last().expect("documents");
    assert!(
        matches!(&last.result, Err(DescriptorError::Yaml(m)) if m.contains("expands to more than")),
        "{:?}",
        last.result
    );
    assert!(
        docs.len() < n,
        "parsing stops at the document that exhausts the budget"
    );
    assert!(docs[0].result.is_ok());
}
