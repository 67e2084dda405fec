use super::*;

fn gh(text: &str) -> CodeOwners {
    CodeOwners::parse(text, Flavor::GitHub)
}

fn names(owners: Vec<Owner>) -> Vec<String> {
    owners.iter().map(ToString::to_string).collect()
}

#[test]
fn last_match_wins_and_defaults_apply() {
    let c = gh(
        "# default owners\n*       @global-owner1 @global-owner2\n*.js    @js-owner #comment\n*.txt   @octo-org/octocats\n*.go    docs@example.com\n",
    );
    assert!(c.errors.is_empty(), "{:?}", c.errors);
    assert_eq!(names(c.owners_of("src/app.js")), vec!["@js-owner"]);
    assert_eq!(names(c.owners_of("notes.txt")), vec!["@octo-org/octocats"]);
    assert_eq!(names(c.owners_of("cmd/main.go")), vec!["docs@example.com"]);
    assert_eq!(
        names(c.owners_of("README.md")),
        vec!["@global-owner1", "@global-owner2"]
    );
    assert_eq!(
        names(c.repo_owners()),
        vec!["@global-owner1", "@global-owner2"]
    );
    assert_eq!(
        c.owners_of("x.txt"),
        vec![Owner::Team("octo-org/octocats".into())]
    );
}

#[test]
fn anchored_directories_own_everything_below() {
    let c = gh("/build/logs/ @doctocat\n");
    assert_eq!(names(c.owners_of("build/logs/a.log")), vec!["@doctocat"]);
    assert_eq!(
        names(c.owners_of("build/logs/deep/b.log")),
        vec!["@doctocat"]
    );
    assert!(c.owners_of("src/build/logs/a.log").is_empty());
    assert!(
        c.owners_of("build/logs").is_empty(),
        "a trailing slash matches directories only"
    );
}

#[test]
fn dir_star_owns_direct_children_only() {
    let c = gh("docs/*  docs@example.com\n");
    assert_eq!(
        names(c.owners_of("docs/getting-started.md")),
        vec!["docs@example.com"]
    );
    assert!(c.owners_of("docs/build-app/troubleshooting.md").is_empty());
}

#[test]
fn unanchored_directory_matches_at_any_depth() {
    let c = gh("apps/ @octocat\n");
    assert_eq!(names(c.owners_of("apps/a.rs")), vec!["@octocat"]);
    assert_eq!(names(c.owners_of("web/apps/x/y.rs")), vec!["@octocat"]);
    assert!(c.owners_of("apps").is_empty());
}

#[test]
fn double_star_prefix_matches_any_depth() {
    let c = gh("**/logs @octocat\n");
    for p in [
        "build/logs/x",
        "scripts/logs/y",
        "deeply/nested/logs/z",
        "logs/root",
    ] {
        assert_eq!(names(c.owners_of(p)), vec!["@octocat"], "{p}");
    }
    assert!(c.owners_of("logsx/a").is_empty());
}

#[test]
fn a_rule_without_owners_unsets_ownership() {
    let c = gh("/apps/ @octocat\n/apps/github\n");
    assert_eq!(names(c.owners_of("apps/web/index.ts")), vec!["@octocat"]);
    assert!(c.owners_of("apps/github/main.rs").is_empty());
    let c = gh("/apps/ @octocat\n/apps/github @doctocat\n");
    assert_eq!(names(c.owners_of("apps/github/main.rs")), vec!["@doctocat"]);
}

#[test]
fn github_rejects_negation_ranges_and_bad_owners_line_by_line() {
    let c = gh("* @a\n!*.md @b\n*.[ch] @c\n*.rs @not/a/team\n*.py nobody\n*.go @ok\n");
    let lines: Vec<usize> = c.errors.iter().map(|e| e.line).collect();
    assert_eq!(lines, vec![2, 3, 4, 5]);
    assert_eq!(names(c.owners_of("main.go")), vec!["@ok"]);
    assert_eq!(names(c.owners_of("README.md")), vec!["@a"]);
}

#[test]
fn escapes_and_case_sensitivity() {
    let c = gh("\\#notes @hash\nmy\\ file.txt @space\nREADME.md @upper\n");
    assert!(c.errors.is_empty(), "{:?}", c.errors);
    assert_eq!(names(c.owners_of("#notes")), vec!["@hash"]);
    assert_eq!(names(c.owners_of("my file.txt")), vec!["@space"]);
    assert!(
        c.owners_of("readme.md").is_empty(),
        "paths are case-sensitive"
    );
}

#[test]
fn gitlab_sections_combine_and_use_default_owners() {
    let text = "\
* @everyone-default

[Documentation] @docs-team
docs/
*.md @tech-writer

^[Security][2] @@maintainer @sec/leads
/auth/ 

[documentation]
README.md @readme-owner
";
    let c = CodeOwners::parse(text, Flavor::GitLab);
    assert!(c.errors.is_empty(), "{:?}", c.errors);
    assert!(c.has_optional_sections());
    // docs/ gets the section's default owners; the unnamed section adds its own.
    assert_eq!(
        names(c.owners_of("docs/intro.txt")),
        vec!["@everyone-default", "@docs-team"]
    );
    // Later rules in the (case-insensitively merged) section win.
    assert_eq!(
        names(c.owners_of("README.md")),
        vec!["@everyone-default", "@readme-owner"]
    );
    assert_eq!(
        names(c.owners_of("guide.md")),
        vec!["@everyone-default", "@tech-writer"]
    );
    assert_eq!(
        names(c.owners_of("auth/login.go")),
        vec!["@everyone-default", "@@maintainer", "@sec/leads"]
    );
}

#[test]
fn gitlab_exclusions_and_nested_groups() {
    let c = CodeOwners::parse("* @org/platform/core\n!*.lock\n", Flavor::GitLab);
    assert!(c.errors.is_empty(), "{:?}", c.errors);
    assert_eq!(names(c.owners_of("src/a.rs")), vec!["@org/platform/core"]);
    assert!(c.owners_of("Cargo.lock").is_empty());
}

#[test]
fn locations_in_lookup_order() {
    assert_eq!(Flavor::GitHub.locations()[0], ".github/CODEOWNERS");
    assert_eq!(Flavor::GitLab.locations()[2], ".gitlab/CODEOWNERS");
}

#[test]
fn deciding_line_is_evidence() {
    let c = gh("* @a\n*.rs @b\n");
    assert_eq!(c.deciding_line("src/x.rs"), Some(2));
    assert_eq!(c.deciding_line("x.md"), Some(1));
}

proptest::proptest! {
    #[test]
    fn never_panics(text in "\\PC{0,300}", path in "[a-z/._*\\[\\]!-]{0,40}") {
        for flavor in [Flavor::GitHub, Flavor::GitLab] {
            let c = CodeOwners::parse(&text, flavor);
            let _ = c.owners_of(&path);
            let _ = c.repo_owners();
        }
    }
}
