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

fn gl(text: &str) -> CodeOwners {
    CodeOwners::parse(text, Flavor::GitLab)
}

/// Whether `path` has an owner under `text` in each flavour: (GitHub, GitLab).
fn owned(text: &str, path: &str) -> (bool, bool) {
    (
        !gh(text).owners_of(path).is_empty(),
        !gl(text).owners_of(path).is_empty(),
    )
}

// GitHub's CODEOWNERS "uses a pattern that follows most of the same rules used in gitignore
// files" (https://docs.github.com/en/repositories/managing-your-repositorys-settings-and-features/customizing-your-repository/about-code-owners#codeowners-syntax),
// and gitignore says: "If there is a separator at the beginning or middle (or both) of the
// pattern, then the pattern is relative to the directory level of the particular .gitignore
// file itself. Otherwise the pattern may also match at any level below"
// (https://git-scm.com/docs/gitignore#_pattern_format).
// GitLab's "Relative paths": "Paths without a leading `/` are treated as globstar paths", e.g.
// `internal/README.md` "Matches /internal/README.md, /docs/internal/README.md,
// /docs/api/internal/README.md" (https://docs.gitlab.com/user/project/codeowners/reference/#relative-paths).
#[test]
fn a_slash_in_the_middle_anchors_on_github_and_not_on_gitlab() {
    let text = "internal/README.md @owner\n";
    assert_eq!(owned(text, "internal/README.md"), (true, true));
    for deep in [
        "docs/internal/README.md",
        "docs/api/internal/README.md",
        "a/b/internal/README.md",
    ] {
        assert_eq!(owned(text, deep), (false, true), "{deep}");
    }
    assert_eq!(owned(text, "internal/other.md"), (false, false));
    assert_eq!(owned(text, "xinternal/README.md"), (false, false));
    // A leading slash anchors in both.
    let text = "/internal/README.md @owner\n";
    assert_eq!(owned(text, "internal/README.md"), (true, true));
    assert_eq!(owned(text, "docs/internal/README.md"), (false, false));
    // GitLab's "Absolute paths": "/README.md  Matches only README.md in the root."
    let text = "/README.md @owner\n";
    assert_eq!(owned(text, "README.md"), (true, true));
    assert_eq!(owned(text, "docs/README.md"), (false, false));
    // No slash at all: any depth in both (GitLab: `README.md` "Matches /README.md,
    // /internal/README.md, /app/lib/README.md").
    let text = "README.md @owner\n";
    for p in ["README.md", "internal/README.md", "app/lib/README.md"] {
        assert_eq!(owned(text, p), (true, true), "{p}");
    }
}

// GitHub: "/build/logs/ ... owns any files in the build/logs directory at the root of the
// repository and any of its subdirectories"; "apps/ ... owns any file in an apps directory
// anywhere in your repository". GitLab "Directory paths": "End a path with `/` to match all
// files in the directory and its subdirectories"; without a leading `/` it is a globstar path.
#[test]
fn trailing_slash_directories_in_both_flavours() {
    let text = "docs/internal/ @owner\n";
    assert_eq!(owned(text, "docs/internal/a.md"), (true, true));
    assert_eq!(owned(text, "docs/internal/deep/b.md"), (true, true));
    assert_eq!(owned(text, "src/docs/internal/a.md"), (false, true));
    assert_eq!(
        owned(text, "docs/internal"),
        (false, false),
        "a trailing slash matches directories only"
    );
    let text = "/docs/ @owner\n";
    assert_eq!(owned(text, "docs/a/b.md"), (true, true));
    assert_eq!(owned(text, "src/docs/a.md"), (false, false));
    let text = "apps/ @owner\n";
    assert_eq!(owned(text, "web/apps/x/y.rs"), (true, true));
}

// GitHub: "The `docs/*` pattern will match files like `docs/getting-started.md` but not
// further nested files like `docs/build-app/troubleshooting.md`." GitLab (17.x example file):
// "End a path in `/*` to specify Code Owners for every file in a directory, but not nested
// deeper. This code matches `docs/index.md` but not `docs/projects/index.md`"; its "Wildcard
// paths": `/docs/*/README.md` is "README.md files one level deep within the docs directory";
// "Globstar paths": `/docs/**/index.md` matches "/docs/index.md, /docs/api/index.md, and
// /docs/api/graphql/index.md".
#[test]
fn star_and_globstar_as_both_services_document_them() {
    let text = "docs/* @owner\n";
    assert_eq!(owned(text, "docs/getting-started.md"), (true, true));
    assert_eq!(
        owned(text, "docs/build-app/troubleshooting.md"),
        (false, false)
    );
    // Unanchored on GitLab only, and still one level below that `docs`.
    assert_eq!(owned(text, "site/docs/index.md"), (false, true));
    assert_eq!(owned(text, "site/docs/projects/index.md"), (false, false));

    let text = "/docs/*/README.md @owner\n";
    assert_eq!(owned(text, "docs/api/README.md"), (true, true));
    assert_eq!(owned(text, "docs/README.md"), (false, false));
    assert_eq!(owned(text, "docs/api/v1/README.md"), (false, false));

    let text = "/docs/*.md @owner\n";
    assert_eq!(owned(text, "docs/index.md"), (true, true));
    assert_eq!(owned(text, "docs/api/index.md"), (false, false));

    let text = "/docs/**/index.md @owner\n";
    for p in [
        "docs/index.md",
        "docs/api/index.md",
        "docs/api/graphql/index.md",
    ] {
        assert_eq!(owned(text, p), (true, true), "{p}");
    }
    assert_eq!(owned(text, "src/docs/index.md"), (false, false));
}

// GitLab's own sections example (https://docs.gitlab.com/user/project/codeowners/reference/#sections):
// "Both lines in `[README Owners]` match this file's name, but only the last line in the
// section is kept." With relative paths matching at any depth, the same holds one level down.
#[test]
fn gitlab_sections_example_with_a_nested_internal_readme() {
    let c = gl("\
* @admin

[README Owners]
README.md @user1 @user2
internal/README.md @user4

[README other owners]
README.md @user3
");
    assert!(c.errors.is_empty(), "{:?}", c.errors);
    assert_eq!(
        names(c.owners_of("README.md")),
        vec!["@admin", "@user1", "@user2", "@user3"]
    );
    for p in ["internal/README.md", "docs/internal/README.md"] {
        assert_eq!(
            names(c.owners_of(p)),
            vec!["@admin", "@user4", "@user3"],
            "{p}"
        );
    }
}

// GitLab "Exclusion patterns" (https://docs.gitlab.com/user/project/codeowners/reference/#exclusion-patterns):
// "Exclusions are evaluated in order in their section", e.g. `!*.rb` then
// `/special/*.rb @ruby-owner`: "This won't take effect as *.rb is already excluded"; and
// "After a pattern is excluded, it cannot be included again in the same section".
#[test]
fn gitlab_exclusion_is_final_within_its_section() {
    let c = gl("* @default-owner\n!*.rb\n/special/*.rb @ruby-owner\n");
    assert!(c.errors.is_empty(), "{:?}", c.errors);
    assert!(c.owners_of("special/x.rb").is_empty());
    assert!(c.owners_of("lib/y.rb").is_empty());
    assert_eq!(names(c.owners_of("README.md")), vec!["@default-owner"]);
    assert_eq!(c.deciding_line("special/x.rb"), Some(2), "the exclusion");
    assert_eq!(c.deciding_line("README.md"), Some(1));

    let c = gl("[Ruby]\n*.rb @ruby-team\n!/config/**/*.rb\n/config/routes.rb @ops\n");
    assert!(c.errors.is_empty(), "{:?}", c.errors);
    assert!(c.owners_of("config/routes.rb").is_empty());
    assert!(c.owners_of("config/deep/x.rb").is_empty());
    assert_eq!(names(c.owners_of("app/models/user.rb")), vec!["@ruby-team"]);

    // Files updated by automation: `!**/generated/` is "Any files in generated directories".
    let c = gl("* @default-owner\n!package-lock.json\n!**/generated/\n");
    assert!(c.owners_of("web/package-lock.json").is_empty());
    assert!(c.owners_of("a/generated/b/c.ts").is_empty());
    assert!(c.owners_of("generated/x.ts").is_empty());
    assert_eq!(names(c.owners_of("src/main.ts")), vec!["@default-owner"]);
}

// "Exclusions apply in their section": `!pom.xml` "applies to the default section", and "If you
// need different exclusions for different owners, use multiple sections" ([Ruby] excludes
// config Ruby files, "[Config] /config/ @ops-team  # Config files still require ops-team
// approval").
#[test]
fn gitlab_exclusions_apply_in_their_section_only() {
    let c = gl("\
* @username
!pom.xml

[Ruby]
*.rb @ruby-team
!/config/**/*.rb

[Config]
/config/ @ops-team
");
    assert!(c.errors.is_empty(), "{:?}", c.errors);
    assert!(c.owners_of("pom.xml").is_empty());
    assert_eq!(
        names(c.owners_of("config/app.rb")),
        vec!["@username", "@ops-team"]
    );
    assert_eq!(
        names(c.owners_of("lib/a.rb")),
        vec!["@username", "@ruby-team"]
    );
    // pom.xml under config/ is excluded from the default section only.
    assert_eq!(names(c.owners_of("config/pom.xml")), vec!["@ops-team"]);
}

// GitHub: "Using `!` to negate a pattern" does not work in CODEOWNERS; the line stays an error
// there and later rules decide as usual.
#[test]
fn github_keeps_a_bang_line_an_error_and_later_rules_apply() {
    let c = gh("* @default-owner\n!*.rb\n/special/*.rb @ruby-owner\n");
    assert_eq!(c.errors.iter().map(|e| e.line).collect::<Vec<_>>(), vec![2]);
    assert_eq!(names(c.owners_of("special/x.rb")), vec!["@ruby-owner"]);
    assert_eq!(names(c.owners_of("lib/y.rb")), vec!["@default-owner"]);
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
