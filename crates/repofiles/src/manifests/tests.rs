use super::*;

fn deps(m: &Manifest) -> Vec<(String, String, Scope)> {
    m.dependencies
        .iter()
        .map(|d| (d.package.clone(), d.requirement.clone(), d.scope))
        .collect()
}

fn has(m: &Manifest, package: &str, requirement: &str, scope: Scope) -> bool {
    deps(m).contains(&(package.to_string(), requirement.to_string(), scope))
}

/// Asserts that `m` holds each of `expected` (package, requirement, scope).
fn assert_has(m: &Manifest, expected: &[(&str, &str, Scope)]) {
    for &(package, requirement, scope) in expected {
        assert!(
            has(m, package, requirement, scope),
            "{package} {requirement} {scope:?} in {:?}",
            deps(m)
        );
    }
}

#[test]
fn cargo_toml() {
    let m = parse_manifest(
        "svc/Cargo.toml",
        r#"
[package]
name = "payments-core"
version = "0.4.0"
edition = "2021"

[dependencies]
serde = { version = "1.0", features = ["derive"] }
tokio = "1.40"
log-crate = { package = "log", version = "0.4" }
internal = { path = "../internal" }
shared = { workspace = true }
fork = { git = "https://example.com/fork.git", branch = "main" }

[dev-dependencies]
proptest = "1"

[build-dependencies]
cc = "1.0"

[target.'cfg(unix)'.dependencies]
libc = "0.2"
"#,
    )
    .unwrap();
    assert_eq!(
        m.produces,
        vec![Package {
            ecosystem: Ecosystem::Cargo,
            name: "payments-core".into()
        }]
    );
    assert!(has(&m, "serde", "^1.0", Scope::Runtime));
    assert!(
        has(&m, "log", "^0.4", Scope::Runtime),
        "renamed dependency uses the real crate name"
    );
    assert_has(
        &m,
        &[
            ("internal", "path:../internal", Scope::Runtime),
            ("shared", "workspace", Scope::Runtime),
            ("fork", "git+https://example.com/fork.git", Scope::Runtime),
            ("proptest", "^1", Scope::Dev),
            ("cc", "^1.0", Scope::Build),
            ("libc", "^0.2", Scope::Runtime),
        ],
    );
    assert!(
        m.dependencies
            .iter()
            .all(|d| d.file == "svc/Cargo.toml" && d.ecosystem == Ecosystem::Cargo)
    );
}

#[test]
fn package_json() {
    let m = parse_manifest(
        "package.json",
        r#"{
  "name": "@acme/web-shop",
  "version": "2.3.1",
  "dependencies": {"react": "^18.2.0", "@acme/ui-kit": "workspace:*"},
  "peerDependencies": {"react-dom": ">=18"},
  "devDependencies": {"typescript": "~5.4.0", "jest": "29.7.0"},
  "scripts": {"test": "jest"}
}"#,
    )
    .unwrap();
    assert_eq!(m.produces[0].name, "@acme/web-shop");
    assert_has(
        &m,
        &[
            ("react", "^18.2.0", Scope::Runtime),
            ("@acme/ui-kit", "workspace:*", Scope::Runtime),
            ("react-dom", ">=18", Scope::Runtime),
            ("typescript", "~5.4.0", Scope::Dev),
        ],
    );
    let private = parse_manifest("package.json", r#"{"name": "app", "private": true}"#).unwrap();
    assert!(
        private.produces.is_empty(),
        "private packages are not published"
    );
}

#[test]
fn go_mod() {
    let m = parse_manifest(
        "go.mod",
        "module github.com/acme/payments // the module\n\ngo 1.24\n\nrequire github.com/google/uuid v1.6.0\n\nrequire (\n\tgithub.com/spf13/cobra v1.8.1\n\tgolang.org/x/sys v0.26.0 // indirect\n)\n\nreplace github.com/old/x => ../x\n\ntool golang.org/x/tools/cmd/stringer\n",
    )
    .unwrap();
    assert_eq!(m.produces[0].name, "github.com/acme/payments");
    assert_has(
        &m,
        &[
            ("github.com/google/uuid", "v1.6.0", Scope::Runtime),
            ("github.com/spf13/cobra", "v1.8.1", Scope::Runtime),
            ("golang.org/x/sys", "v0.26.0", Scope::Runtime),
            ("golang.org/x/tools/cmd/stringer", "", Scope::Build),
        ],
    );
    assert_eq!(m.dependencies.len(), 4, "replace is not a requirement");
}

#[test]
fn requirements_txt() {
    let text = "# runtime\nrequests>=2.31,<3  # http\nDjango==5.0.6 \\\n    --hash=sha256:abc\nuvicorn[standard]~=0.30\nnumpy; python_version >= \"3.10\"\n-r base.txt\n--index-url https://pypi.example.com/simple\n-e .\n./local-pkg\nmypkg @ https://example.com/mypkg-1.0.tar.gz\n";
    let m = parse_manifest("requirements.txt", text).unwrap();
    assert!(
        has(&m, "requests", "<3, >=2.31", Scope::Runtime)
            || has(&m, "requests", ">=2.31, <3", Scope::Runtime),
        "{:?}",
        deps(&m)
    );
    assert!(
        has(&m, "django", "==5.0.6", Scope::Runtime),
        "{:?}",
        deps(&m)
    );
    assert_has(
        &m,
        &[
            ("uvicorn", "~=0.30", Scope::Runtime),
            ("numpy", "", Scope::Runtime),
        ],
    );
    assert!(
        has(
            &m,
            "mypkg",
            "https://example.com/mypkg-1.0.tar.gz",
            Scope::Runtime
        ),
        "{:?}",
        deps(&m)
    );
    assert_eq!(m.dependencies.len(), 5);
    let dev = parse_manifest("requirements-test.txt", "pytest>=8\n").unwrap();
    assert!(has(&dev, "pytest", ">=8", Scope::Dev));
    let bad =
        parse_manifest("requirements.txt", "requests\nthis is not a requirement!\n").unwrap_err();
    assert!(bad.message.starts_with("line 2:"), "{bad}");
}

#[test]
fn pyproject_toml() {
    let m = parse_manifest(
        "pyproject.toml",
        r#"
[build-system]
requires = ["hatchling>=1.21"]
build-backend = "hatchling.build"

[project]
name = "acme-billing"
dependencies = ["httpx>=0.27", "pydantic>=2,<3"]

[project.optional-dependencies]
postgres = ["psycopg[binary]>=3.1"]
test = ["pytest>=8"]

[dependency-groups]
lint = ["ruff>=0.6", {include-group = "test"}]

[tool.poetry.dependencies]
python = "^3.11"
"#,
    )
    .unwrap();
    assert_eq!(m.produces[0].name, "acme-billing");
    assert_has(
        &m,
        &[
            ("httpx", ">=0.27", Scope::Runtime),
            ("psycopg", ">=3.1", Scope::Runtime),
            ("pytest", ">=8", Scope::Dev),
            ("ruff", ">=0.6", Scope::Dev),
            ("hatchling", ">=1.21", Scope::Build),
        ],
    );
    assert!(!deps(&m).iter().any(|d| d.0 == "python"));

    let poetry = parse_manifest(
        "pyproject.toml",
        "[tool.poetry]\nname = \"legacy\"\n[tool.poetry.dependencies]\npython = \"^3.9\"\nflask = \"^3.0\"\nlib = { git = \"https://example.com/lib.git\" }\n[tool.poetry.group.dev.dependencies]\nblack = \"*\"\n",
    )
    .unwrap();
    assert_eq!(poetry.produces[0].name, "legacy");
    assert_has(
        &poetry,
        &[
            ("flask", "^3.0", Scope::Runtime),
            ("lib", "git+https://example.com/lib.git", Scope::Runtime),
            ("black", "*", Scope::Dev),
        ],
    );
}

#[test]
fn pom_xml_with_properties() {
    let m = parse_manifest(
        "pom.xml",
        r#"<?xml version="1.0" encoding="UTF-8"?>
<project xmlns="http://maven.apache.org/POM/4.0.0">
  <modelVersion>4.0.0</modelVersion>
  <parent>
    <groupId>com.acme</groupId>
    <artifactId>acme-parent</artifactId>
    <version>7</version>
  </parent>
  <artifactId>ledger-service</artifactId>
  <properties>
    <log4j.version>2.23.1</log4j.version>
    <junit.version>5.10.2</junit.version>
  </properties>
  <dependencyManagement>
    <dependencies>
      <dependency><groupId>managed</groupId><artifactId>only</artifactId><version>1</version></dependency>
    </dependencies>
  </dependencyManagement>
  <dependencies>
    <dependency>
      <groupId>org.apache.logging.log4j</groupId>
      <artifactId>log4j-core</artifactId>
      <version>${log4j.version}</version>
    </dependency>
    <dependency>
      <groupId>${project.groupId}</groupId>
      <artifactId>ledger-api</artifactId>
      <version>${project.version}</version>
    </dependency>
    <dependency>
      <groupId>org.junit.jupiter</groupId>
      <artifactId>junit-jupiter</artifactId>
      <version>${junit.version}</version>
      <scope>test</scope>
    </dependency>
    <dependency>
      <groupId>jakarta.servlet</groupId>
      <artifactId>jakarta.servlet-api</artifactId>
      <scope>provided</scope>
    </dependency>
  </dependencies>
</project>"#,
    )
    .unwrap();
    assert_eq!(
        m.produces[0].name, "com.acme:ledger-service",
        "groupId inherited from the parent"
    );
    assert_has(
        &m,
        &[
            (
                "org.apache.logging.log4j:log4j-core",
                "2.23.1",
                Scope::Runtime,
            ),
            ("com.acme:ledger-api", "7", Scope::Runtime),
            ("org.junit.jupiter:junit-jupiter", "5.10.2", Scope::Dev),
            ("jakarta.servlet:jakarta.servlet-api", "", Scope::Build),
        ],
    );
    assert!(
        !deps(&m).iter().any(|d| d.0.starts_with("managed")),
        "dependencyManagement is not a dependency"
    );
}

#[test]
fn malformed_manifests_are_errors() {
    for (path, text) in [
        ("Cargo.toml", "[package\nname ="),
        ("package.json", "{\"dependencies\": [1, 2]}"),
        ("package.json", "not json"),
        ("go.mod", "require (\n  x v1\n"),
        ("go.mod", "require x\n"),
        ("pyproject.toml", "[project]\ndependencies = \"requests\"\n"),
        (
            "pom.xml",
            "<project><dependencies><dependency><groupId>x</groupId></dependency></dependencies></project>",
        ),
        ("pom.xml", "<project><unclosed></project>"),
        ("setup.py", "print()"),
    ] {
        let e = parse_manifest(path, text).unwrap_err();
        assert_eq!(e.file, path);
        assert!(!e.message.is_empty());
    }
    assert!(
        is_manifest("a/b/requirements-dev.txt")
            && is_manifest("pom.xml")
            && !is_manifest("README.md")
    );
}

proptest::proptest! {
    #[test]
    fn never_panic(text in "\\PC{0,400}") {
        for path in MANIFEST_FILES {
            let _ = parse_manifest(path, &text);
        }
    }

    #[test]
    fn never_panic_on_near_valid_xml(inner in "[<>/a-zA-Z${}. ]{0,200}") {
        let _ = parse_manifest("pom.xml", &format!("<project><dependencies><dependency>{inner}</dependency></dependencies></project>"));
    }
}
