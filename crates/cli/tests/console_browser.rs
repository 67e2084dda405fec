//! The console in headless Chromium over WebDriver: the demo's catalog page by page, and signing
//! in with a read token; screenshots of each page go to target/console-screenshots/.

mod common;
#[path = "browser/webdriver.rs"]
mod webdriver;

use std::collections::BTreeSet;
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Stdio};
use std::time::{Duration, Instant};

use serde_json::{Value, json};
use webdriver::{El, Http, Session};

/// A desktop window, and a phone's.
const DESKTOP: (u32, u32) = (1280, 900);
const PHONE: (u32, u32) = (390, 844);
/// The demo's connectors, as the runs page lists them.
const DEMO_CONNECTORS: [&str; 5] = ["github", "gitlab", "k8s", "pagerduty", "jira"];

// ---------------------------------------------------------------------------------------------
// The browser and the processes around it.

/// Where chromium and chromedriver are, or why the tests cannot run.
fn browser_binaries() -> Result<(PathBuf, PathBuf), String> {
    let find = |names: &[&str]| {
        let path = std::env::var_os("PATH").unwrap_or_default();
        std::env::split_paths(&path)
            .flat_map(|dir| names.iter().map(move |n| dir.join(n)))
            .find(|p| p.is_file())
    };
    let chromium = find(&["chromium", "chromium-browser", "google-chrome"]);
    let driver = find(&["chromedriver"]);
    match (chromium, driver) {
        (Some(c), Some(d)) => Ok((c, d)),
        (c, d) => {
            let missing: Vec<&str> = [(c.is_none(), "chromium"), (d.is_none(), "chromedriver")]
                .into_iter()
                .filter_map(|(gone, name)| gone.then_some(name))
                .collect();
            Err(format!("{} not found on PATH", missing.join(" and ")))
        }
    }
}

/// The binaries, or `None` after saying the test is skipped; fails instead under CI=true.
fn browser_or_skip(test: &str) -> Option<(PathBuf, PathBuf)> {
    match browser_binaries() {
        Ok(found) => Some(found),
        Err(why) => {
            let in_ci = std::env::var("CI").is_ok_and(|v| v == "true" || v == "1");
            assert!(
                !in_ci,
                "{test} cannot run in CI: {why} (install chromium and chromium-driver)"
            );
            eprintln!(
                "skipped: {test} needs a browser: {why}; install chromium and chromium-driver"
            );
            None
        }
    }
}

/// A process the test started, killed when the test ends (passing or not). When the test
/// failed, the tail of what it wrote is shown.
struct Proc {
    name: &'static str,
    child: Child,
    log: PathBuf,
}

impl Proc {
    fn spawn(name: &'static str, mut cmd: std::process::Command, log: PathBuf) -> Self {
        let out = std::fs::File::create(&log).expect("log file");
        let err = out.try_clone().expect("log file");
        let child = cmd
            .stdin(Stdio::null())
            .stdout(Stdio::from(out))
            .stderr(Stdio::from(err))
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {name}: {e}"));
        Self { name, child, log }
    }

    fn tail(&self) -> String {
        let text = std::fs::read_to_string(&self.log).unwrap_or_default();
        let lines: Vec<&str> = text.lines().collect();
        lines[lines.len().saturating_sub(40)..].join("\n")
    }

    /// Fails the test when the process has already exited.
    fn assert_running(&mut self) {
        if let Ok(Some(status)) = self.child.try_wait() {
            panic!("{} exited early ({status}):\n{}", self.name, self.tail());
        }
    }
}

impl Drop for Proc {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        if std::thread::panicking() {
            eprintln!("--- the last lines {} wrote:\n{}", self.name, self.tail());
        }
    }
}

/// A port on 127.0.0.1 whose next `n - 1` are free too (the demo's simulated APIs take them).
fn free_ports(n: u16) -> u16 {
    for _ in 0..100 {
        let first = common::free_port();
        if first > u16::MAX - n {
            continue;
        }
        if (first..first + n).all(|p| TcpListener::bind(("127.0.0.1", p)).is_ok()) {
            return first;
        }
    }
    panic!("no {n} consecutive free ports on 127.0.0.1");
}

/// Polls `until` every 100 ms for up to `secs` seconds, checking the process stays up.
fn wait_for(proc: &mut Proc, secs: u64, what: &str, mut until: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(secs);
    while !until() {
        proc.assert_running();
        assert!(Instant::now() < deadline, "{what}: not within {secs} s");
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// chromedriver on a free port, answering `/status`.
fn start_chromedriver(driver: &Path, dir: &Path) -> (Proc, String) {
    let port = common::free_port();
    let mut cmd = std::process::Command::new(driver);
    cmd.arg(format!("--port={port}"));
    let mut proc = Proc::spawn("chromedriver", cmd, dir.join("chromedriver.log"));
    let url = format!("http://127.0.0.1:{port}");
    let http = Http::new();
    wait_for(&mut proc, 30, "chromedriver's /status", || {
        http.get(&format!("{url}/status"), &[])
            .ok()
            .and_then(|a| serde_json::from_str::<Value>(&a.body).ok())
            .is_some_and(|v| v["value"]["ready"] == json!(true))
    });
    (proc, url)
}

/// Where screenshots go: `target/console-screenshots/`.
fn screenshot_dir() -> PathBuf {
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("../../target"));
    let dir = target.join("console-screenshots");
    std::fs::create_dir_all(&dir).expect("the screenshot directory");
    dir.canonicalize().unwrap_or(dir)
}

/// The path of a URL, without its query: `http://h:1/a/b?c` -> `/a/b`.
fn path_of(url: &str) -> String {
    let rest = url.split_once("://").map_or(url, |(_, r)| r);
    let path = rest.find('/').map_or("/", |i| &rest[i..]);
    path.split(['?', '#']).next().unwrap_or("/").to_string()
}

/// The ref an entity page's path names: `/entities/component/default/web` ->
/// `component:default/web`.
fn ref_of_path(path: &str) -> Option<String> {
    let mut parts = path.strip_prefix("/entities/")?.split('/');
    let (kind, ns, name) = (parts.next()?, parts.next()?, parts.next()?);
    Some(format!("{kind}:{ns}/{name}"))
}

/// The session, and what each step needs: where the console is, where screenshots go.
struct Browser {
    s: Session,
    base: String,
    shots: PathBuf,
    /// Every URL the browser was seen on, for checking a secret never reached one.
    seen: Vec<String>,
}

impl Browser {
    fn goto(&mut self, path: &str) {
        self.s.goto(&format!("{}{path}", self.base));
        self.seen.push(self.s.url());
    }

    /// Follows `el` (a link or a submit button) to the next page.
    fn follow(&mut self, el: &El, what: &str) {
        if let Err(e) = self.s.click_and_wait(el) {
            panic!("{what}: {e}");
        }
        self.seen.push(self.s.url());
    }

    fn path(&self) -> String {
        path_of(&self.s.url())
    }

    fn h1(&self) -> String {
        self.s
            .find("h1")
            .map(|h| self.s.text(&h))
            .unwrap_or_default()
    }

    /// The element `css` selects, or a failure saying which page lacked it.
    fn need(&self, css: &str, step: &str) -> El {
        self.s.find(css).unwrap_or_else(|e| {
            panic!(
                "{step}: nothing matches `{css}` on {} (its heading: {:?}; {e}) — is this page built?",
                self.s.url(),
                self.h1()
            )
        })
    }

    /// The link with exactly this text, or a failure saying which page lacked it.
    fn need_link(&self, text: &str, step: &str) -> El {
        self.s.link(text).unwrap_or_else(|e| {
            panic!(
                "{step}: no link {text:?} on {} (its heading: {:?}; {e})",
                self.s.url(),
                self.h1()
            )
        })
    }

    fn texts(&self, css: &str) -> Vec<String> {
        self.s
            .find_all(css)
            .iter()
            .map(|e| self.s.text(e))
            .collect()
    }

    /// The rows of a table's body, each as its cells' texts.
    fn rows(&self, table: &str) -> Vec<Vec<String>> {
        self.s
            .find_all(&format!("{table} tbody tr"))
            .iter()
            .map(|tr| {
                self.s
                    .find_all_in(tr, "td")
                    .iter()
                    .map(|td| self.s.text(td))
                    .collect()
            })
            .collect()
    }

    /// Saves the whole page (up to a few screens tall) as `NAME.png`: the window grows to
    /// the page's height for the picture, then goes back to the desktop size.
    fn shot(&self, name: &str) {
        let path = self.shots.join(format!("{name}.png"));
        let sizes = self.s.script(
            "return [document.documentElement.scrollHeight, window.outerHeight - window.innerHeight]",
        );
        let height = sizes[0].as_u64().unwrap_or(0) + sizes[1].as_u64().unwrap_or(0);
        let tall = u32::try_from(height)
            .unwrap_or(u32::MAX)
            .clamp(DESKTOP.1, 6000);
        self.s.resize(DESKTOP.0, tall);
        self.s.screenshot(&path);
        self.s.resize(DESKTOP.0, DESKTOP.1);
        eprintln!("  screenshot {}", path.display());
    }

    /// Saves the viewport as it is (the phone-size pass).
    fn shot_viewport(&self, name: &str) {
        let path = self.shots.join(format!("{name}.png"));
        self.s.screenshot(&path);
        eprintln!("  screenshot {}", path.display());
    }
}

fn new_browser(driver_url: &str, chromium: &Path, base: &str) -> Browser {
    let s = Session::new(driver_url, chromium, DESKTOP.0, DESKTOP.1)
        .unwrap_or_else(|e| panic!("cannot start a browser session: {e}"));
    Browser {
        s,
        base: base.to_string(),
        shots: screenshot_dir(),
        seen: Vec::new(),
    }
}

/// The number in `#123`-style change sequence cells.
fn seq(cell: &str) -> Option<u64> {
    cell.split_whitespace()
        .find_map(|w| w.strip_prefix('#'))
        .and_then(|n| n.parse().ok())
}

// ---------------------------------------------------------------------------------------------
// The demo's catalog, page by page.

#[test]
fn the_console_reads_the_demo_catalog_in_a_browser() {
    let Some((chromium, driver)) = browser_or_skip("the console's browser test") else {
        return;
    };
    let dir = tempfile::tempdir().expect("dir");
    let port = free_ports(6);
    let mut cmd = common::surveyor_in(dir.path());
    let db = dir.path().join("demo.db");
    cmd.args(["demo", "--size", "small", "--port", &port.to_string()])
        .arg("--db")
        .arg(&db)
        // The org stays still while the pages are read: the counts asserted must not move.
        .args(["--mutate-every", "86400"]);
    let mut demo = Proc::spawn("surveyor demo", cmd, dir.path().join("demo.log"));
    let base = format!("http://127.0.0.1:{port}");
    let http = Http::new();
    // The demo serves only after its first sync, so a ready server has the whole catalog.
    wait_for(&mut demo, 300, "the demo's /readyz", || {
        http.get(&format!("{base}/readyz"), &[])
            .is_ok_and(|a| a.status == 200)
    });
    let total: u64 = {
        let a = http
            .get(&format!("{base}/api/v1/entities?limit=1&total=true"), &[])
            .expect("entities");
        let v: Value = serde_json::from_str(&a.body).expect("json");
        v["totalItems"].as_u64().expect("a total")
    };
    assert!(
        total > 50,
        "the small demo catalog has more than a page: {total}"
    );

    let (_chromedriver, driver_url) = start_chromedriver(&driver, dir.path());
    // Declared after chromedriver, so the session is deleted before chromedriver is killed.
    let mut b = new_browser(&driver_url, &chromium, &base);

    // 01: the catalog shows its counts and a page of rows.
    b.goto("/");
    assert_eq!(b.h1(), "Catalog");
    let count = b.s.text(&b.need("#result-count", "catalog"));
    assert_eq!(count, format!("{total} matching entities"));
    let chips = b.texts(".chips a");
    assert!(chips.contains(&format!("All {total}")), "{chips:?}");
    assert!(
        chips.iter().any(|c| c.starts_with("component ")),
        "{chips:?}"
    );
    let rows = b.rows("#entities");
    assert_eq!(rows.len(), 50, "a full first page");
    assert!(b.s.find("a[rel=next]").is_ok(), "a next page");
    b.shot("01-catalog");

    // 02: on a phone the page does not scroll sideways (wide tables scroll in their box).
    b.s.resize(PHONE.0, PHONE.1);
    b.goto("/");
    let widths = b.s.script(
        "return [document.documentElement.scrollWidth, window.innerWidth, \
         document.querySelector('#q').getBoundingClientRect().right]",
    );
    let (scroll, inner, q_right) = (
        widths[0].as_f64().unwrap_or(f64::MAX),
        widths[1].as_f64().unwrap_or(0.0),
        widths[2].as_f64().unwrap_or(f64::MAX),
    );
    assert!(
        inner <= f64::from(PHONE.0),
        "the phone-size window: {widths}"
    );
    assert!(
        scroll <= inner,
        "the catalog scrolls sideways on a phone: {widths}"
    );
    assert!(
        q_right <= inner,
        "the search box overflows on a phone: {widths}"
    );
    assert!(b.s.displayed(&b.need("#q", "phone")));
    b.shot_viewport("02-catalog-phone");
    b.s.resize(DESKTOP.0, DESKTOP.1);

    // 03: a search narrows the table to the entities matching it.
    b.goto("/?kind=component");
    let component =
        b.s.find_all("#entities tbody tr td:first-child a")
            .first()
            .map(|a| b.s.text(a))
            .expect("a component");
    let name = component
        .split_once('/')
        .map(|(_, n)| n.to_string())
        .expect("a ref");
    b.goto("/");
    let q = b.need("#q", "search");
    b.s.type_into(&q, &name).expect("type a search");
    let submit = b.need("form.filters button[type=submit]", "search");
    b.follow(&submit, "search");
    assert!(
        b.s.url().contains(&format!("q={name}")),
        "the search is in the URL: {}",
        b.s.url()
    );
    let found = b.rows("#entities");
    assert!(
        !found.is_empty() && (found.len() as u64) < total,
        "{name}: {} rows",
        found.len()
    );
    for row in &found {
        assert!(
            row.join(" ").to_lowercase().contains(&name.to_lowercase()),
            "{row:?} does not match {name}"
        );
    }
    let shown = b.texts("#entities tbody tr td:first-child a");
    assert!(shown.contains(&component), "{component} in {shown:?}");
    let count = b.s.text(&b.need("#result-count", "search"));
    assert!(
        count.starts_with(&format!("{} matching", found.len())),
        "{count}"
    );
    b.shot("03-search");

    // 04: its entity page shows each field with the source that set it.
    let link =
        b.s.find_all("#entities tbody tr td:first-child a")
            .into_iter()
            .find(|a| b.s.text(a) == component)
            .expect("the component's link");
    b.follow(&link, "open the entity");
    assert_eq!(b.h1(), component);
    let entity_path = b.path();
    assert_eq!(
        ref_of_path(&entity_path).as_deref(),
        Some(component.as_str())
    );
    let fields = b.rows("#fields");
    let name_row = fields
        .iter()
        .find(|r| r.first().is_some_and(|f| f == "metadata › name"))
        .unwrap_or_else(|| panic!("no metadata › name row: {fields:?}"));
    assert_eq!(name_row[1], name);
    for row in &fields {
        assert_eq!(row.len(), 3, "{row:?}");
        // A union field (links, tags) names every source that added to it.
        assert!(
            row[2].split(", ").all(|s| DEMO_CONNECTORS.contains(&s)),
            "set by {:?}",
            row[2]
        );
    }
    let sources = b.texts("#sources li");
    assert!(!sources.is_empty(), "the sources that describe it");
    b.need("#history li", "entity");
    b.shot("04-entity");

    // 05: a relation's link lands on the related entity's page (its owner, if it has one).
    let types = b.texts("#relations dt");
    let dds = b.s.find_all("#relations dd");
    assert_eq!(types.len(), dds.len());
    assert!(!types.is_empty(), "{component} has relations");
    let pick = types.iter().position(|t| t == "ownedBy").unwrap_or(0);
    let target =
        b.s.find_all_in(&dds[pick], "a")
            .into_iter()
            .next()
            .expect("a relation link");
    let target_ref = b.s.text(&target);
    b.follow(&target, "follow a relation");
    assert_eq!(b.h1().to_lowercase(), target_ref.to_lowercase());
    assert_eq!(
        ref_of_path(&b.path()).map(|r| r.to_lowercase()),
        Some(target_ref.to_lowercase())
    );
    b.need("#fields tbody tr", "related entity");
    b.shot("05-related-entity");

    // 06: the changes feed pages back and forth.
    let nav = b.need_link("Changes", "changes");
    b.follow(&nav, "changes");
    assert_eq!(b.path(), "/changes");
    let first = b.rows("#changes");
    assert_eq!(first.len(), 50, "a full page of changes");
    assert!(
        b.s.find("a[rel=prev]").is_err(),
        "no newer page than the newest"
    );
    let seqs: Vec<u64> = first
        .iter()
        .filter_map(|r| r.first().and_then(|c| seq(c)))
        .collect();
    assert_eq!(seqs.len(), first.len(), "each change has its #seq");
    assert!(
        seqs.windows(2).all(|w| w[0] > w[1]),
        "newest first: {seqs:?}"
    );
    b.shot("06-changes");
    let older = b.need("a[rel=next]", "changes");
    assert_eq!(b.s.text(&older), "Older →");
    b.follow(&older, "older changes");
    let second = b.rows("#changes");
    assert!(!second.is_empty());
    let second_seqs: Vec<u64> = second
        .iter()
        .filter_map(|r| r.first().and_then(|c| seq(c)))
        .collect();
    let oldest_first_page = seqs.last().copied().unwrap_or(0);
    assert!(
        second_seqs.iter().all(|s| *s < oldest_first_page),
        "older than #{oldest_first_page}: {second_seqs:?}"
    );
    b.shot("07-changes-older");
    let newer = b.need("a[rel=prev]", "older changes");
    assert_eq!(b.s.text(&newer), "← Newer");
    b.follow(&newer, "newer changes");
    assert_eq!(b.rows("#changes"), first, "back on the newest page");

    // 08: the runs page lists the demo's connectors and their runs.
    let nav = b.need_link("Runs", "runs");
    b.follow(&nav, "runs");
    let connectors: BTreeSet<String> = b
        .rows("#connectors")
        .iter()
        .filter_map(|r| r.first().cloned())
        .collect();
    let expected: BTreeSet<String> = DEMO_CONNECTORS.iter().map(|c| c.to_string()).collect();
    assert_eq!(connectors, expected);
    let runs = b.rows("#runs");
    assert!(runs.len() >= DEMO_CONNECTORS.len(), "{runs:?}");
    assert!(
        runs.iter()
            .all(|r| r.get(2).is_some_and(|s| s == "succeeded")),
        "{runs:?}"
    );
    b.shot("08-runs");

    // 09: in a dark colour scheme the page follows (light text on a dark background).
    let background = |b: &Browser| {
        b.s.script("return getComputedStyle(document.body).backgroundColor")
            .as_str()
            .unwrap_or_default()
            .to_string()
    };
    b.goto(&entity_path);
    let light = background(&b);
    b.s.devtools(
        "Emulation.setEmulatedMedia",
        json!({ "features": [{ "name": "prefers-color-scheme", "value": "dark" }] }),
    )
    .expect("emulate a dark scheme");
    b.goto(&entity_path);
    let dark = background(&b);
    assert_ne!(light, dark, "the page ignores prefers-color-scheme");
    assert_eq!(light, "rgb(255, 255, 255)");
    b.shot("09-entity-dark");
    b.s.devtools(
        "Emulation.setEmulatedMedia",
        json!({ "features": [{ "name": "prefers-color-scheme", "value": "light" }] }),
    )
    .expect("emulate a light scheme");

    // 10: the entity's graph: the link from its page, nodes that are links, one followed.
    b.goto(&entity_path);
    let graph = b.need_link("Graph of its neighbourhood", "graph");
    b.follow(&graph, "open the graph");
    assert_eq!(b.path(), format!("{entity_path}/graph"));
    b.need("figure.graph svg", "graph");
    let nodes = b.s.find_all("figure.graph svg a");
    assert!(
        nodes.len() >= 2,
        "the entity and a neighbour: {} nodes",
        nodes.len()
    );
    let table = b.rows("#graph-nodes");
    assert!(table.len() >= 2, "the graph's nodes as a table: {table:?}");
    b.shot("10-graph");
    b.goto(&format!("{entity_path}/graph?depth=1"));
    let depth1 = b.s.find_all("figure.graph svg a").len();
    b.goto(&format!("{entity_path}/graph?depth=2"));
    let depth2 = b.s.find_all("figure.graph svg a").len();
    assert!(
        depth2 >= depth1,
        "depth 2 shows at least depth 1's {depth1} nodes: {depth2}"
    );
    b.goto(&format!("{entity_path}/graph"));
    let href = |el: &El| {
        b.s.attr(el, "href")
            .or_else(|| b.s.attr(el, "xlink:href"))
            .unwrap_or_default()
    };
    let neighbour =
        b.s.find_all("figure.graph svg a")
            .into_iter()
            .map(|a| (href(&a), a))
            .find(|(h, _)| h.starts_with("/entities/") && path_of(h) != entity_path)
            .unwrap_or_else(|| panic!("graph: no node links to another entity's page"));
    b.follow(&neighbour.1, "click a graph node");
    assert_eq!(b.path(), path_of(&neighbour.0));
    let expected = ref_of_path(&path_of(&neighbour.0)).expect("an entity path");
    assert_eq!(b.h1().to_lowercase(), expected.to_lowercase());
    b.shot("11-graph-node");

    // 12: ownership gaps, filtered to one rule; the CSV and Markdown links give that view.
    let nav = b.need_link("Ownership gaps", "ownership gaps");
    b.follow(&nav, "ownership gaps");
    assert_eq!(b.path(), "/audit/ownership");
    b.need("#rule-counts", "ownership gaps");
    b.need("#owner-counts", "ownership gaps");
    assert!(!b.rows("#rule-counts").is_empty(), "rule counts");
    let all = b.rows("#findings");
    assert!(!all.is_empty(), "the demo has ownership gaps");
    b.shot("12-ownership");
    let select = b.need("form select[name=rule]", "ownership gaps");
    // Each rule by its value and by its label without a count ("no-owner (5)" -> "no-owner"):
    // a row may show either.
    let options: Vec<(El, String, String)> =
        b.s.find_all_in(&select, "option")
            .into_iter()
            .filter_map(|o| {
                let value = b.s.attr(&o, "value").filter(|v| !v.is_empty())?;
                let text = b.s.text(&o);
                let label = text
                    .split(" (")
                    .next()
                    .unwrap_or_default()
                    .trim()
                    .to_string();
                Some((o, value, label))
            })
            .collect();
    let mentions = |text: &str, value: &str, label: &str| {
        text.contains(value) || (!label.is_empty() && text.contains(label))
    };
    let row_mentions =
        |row: &Vec<String>, value: &str, label: &str| row.iter().any(|c| mentions(c, value, label));
    // A rule some but not all findings break, so the filter visibly narrows.
    let (option, rule, label) = options
        .iter()
        .find(|(_, v, l)| {
            let n = all.iter().filter(|r| row_mentions(r, v, l)).count();
            n > 0 && n < all.len()
        })
        .or_else(|| {
            options
                .iter()
                .find(|(_, v, l)| all.iter().any(|r| row_mentions(r, v, l)))
        })
        .cloned()
        .unwrap_or_else(|| panic!("ownership gaps: no rule of the select is in the findings"));
    b.s.click(&option).expect("choose a rule");
    let submit =
        b.s.find_all(
            "form:has(select[name=rule]) button, form:has(select[name=rule]) input[type=submit]",
        )
        .into_iter()
        .find(|e| b.s.property(e, "type").as_deref() == Some("submit"))
        .unwrap_or_else(|| panic!("ownership gaps: the rule form has no submit button"));
    b.follow(&submit, "filter by rule");
    assert!(b.s.url().contains(&format!("rule={rule}")), "{}", b.s.url());
    let select = b.need("form select[name=rule]", "filtered ownership gaps");
    assert_eq!(
        b.s.property(&select, "value").as_deref(),
        Some(rule.as_str())
    );
    let filtered = b.rows("#findings");
    assert!(!filtered.is_empty(), "findings of {rule}");
    assert!(filtered.len() <= all.len());
    for row in &filtered {
        assert!(
            row_mentions(row, &rule, &label),
            "{row:?} is not about {rule}"
        );
    }
    let refs: Vec<String> = b
        .texts("#findings tbody tr td a")
        .into_iter()
        .filter(|t| t.contains(':') && t.contains('/'))
        .collect();
    b.shot("13-ownership-filtered");

    let csv = b.need_link("CSV", "ownership gaps");
    let csv_href = b.s.property(&csv, "href").unwrap_or_default();
    assert!(
        csv_href.contains("format=csv") && csv_href.contains(&format!("rule={rule}")),
        "the CSV link is this view as CSV: {csv_href}"
    );
    let cookie = b.s.cookie_header();
    let answer = http
        .get(&csv_href, &[("cookie", &cookie)])
        .expect("fetch the CSV");
    assert_eq!(answer.status, 200, "{csv_href}: {}", answer.body);
    assert!(
        answer.header("content-type").starts_with("text/csv"),
        "{}",
        answer.header("content-type")
    );
    assert!(
        answer.header("content-disposition").contains("attachment"),
        "{:?}",
        answer.headers
    );
    let lines: Vec<&str> = answer
        .body
        .lines()
        .filter(|l| !l.trim().is_empty())
        .collect();
    let (header, data) = lines.split_first().expect("a header row");
    assert!(header.contains(','), "a header row: {header}");
    assert!(
        !header.contains(&rule),
        "the first row is the header: {header}"
    );
    assert!(
        data.len() >= filtered.len(),
        "{} CSV rows for {} shown",
        data.len(),
        filtered.len()
    );
    assert!(
        data.iter().all(|l| mentions(l, &rule, &label)),
        "every CSV row is about {rule}:\n{}",
        answer.body
    );
    for r in &refs {
        assert!(
            answer.body.contains(r.as_str()),
            "{r} in the CSV:\n{}",
            answer.body
        );
    }
    let md = b.need_link("Markdown", "ownership gaps");
    let md_href = b.s.property(&md, "href").unwrap_or_default();
    assert!(
        md_href.contains("format=md") && md_href.contains(&format!("rule={rule}")),
        "the Markdown link is this view as Markdown: {md_href}"
    );
    let answer = http
        .get(&md_href, &[("cookie", &cookie)])
        .expect("fetch the Markdown");
    assert_eq!(answer.status, 200, "{md_href}: {}", answer.body);
    for r in &refs {
        assert!(
            answer.body.contains(r.as_str()),
            "{r} in the Markdown:\n{}",
            answer.body
        );
    }

    // 14: drift is read the same way.
    let nav = b.need_link("Drift", "drift");
    b.follow(&nav, "drift");
    assert_eq!(b.path(), "/audit/drift");
    b.need("form select[name=rule]", "drift");
    assert!(!b.rows("#rule-counts").is_empty(), "drift rule counts");
    assert!(
        !b.rows("#findings").is_empty(),
        "the demo has drift findings"
    );
    b.shot("14-drift");

    // 15: the demo's scorecards, from the navigation: one's roll-up per team and its trend,
    // then a team's own view.
    let nav = b.need_link("Scorecards", "scorecards");
    b.follow(&nav, "scorecards");
    assert_eq!(b.path(), "/scorecards");
    let card = b.need_link("Operational readiness", "scorecards");
    b.follow(&card, "operational readiness");
    assert_eq!(b.path(), "/scorecards/operational-readiness");
    assert_eq!(b.h1(), "Operational readiness");
    let teams = b.rows("#teams");
    assert!(!teams.is_empty(), "a roll-up per team");
    assert!(
        !b.rows("#trend").is_empty(),
        "a trend point after the first sync"
    );
    assert_eq!(
        b.rows("#checks").len(),
        5,
        "the demo's five readiness checks"
    );
    b.shot("15-scorecard");
    let team = b.need("#teams tbody tr td a", "scorecard teams");
    b.follow(&team, "a team's view");
    assert!(
        b.s.url().contains("owner="),
        "a team's own view: {}",
        b.s.url()
    );
    b.shot("16-scorecard-team");
}

// ---------------------------------------------------------------------------------------------
// Signing in with a read token.

const TOKEN_VAR: &str = "CONSOLE_BROWSER_READ_TOKEN";
const TOKEN: &str = "console-read-7f3a9c2e";

fn write_served_catalog(dir: &Path, port: u16) {
    std::fs::create_dir_all(dir.join("catalog")).expect("dir");
    for (name, owner) in [("alpha", "team-a"), ("beta", "team-a"), ("gamma", "team-b")] {
        std::fs::write(
            dir.join(format!("catalog/{name}.yaml")),
            format!(
                "apiVersion: backstage.io/v1alpha1\nkind: Component\nmetadata:\n  name: {name}\n  \
                 description: The {name} service\nspec:\n  type: service\n  lifecycle: production\n  \
                 owner: {owner}\n"
            ),
        )
        .expect("write");
    }
    std::fs::write(
        dir.join("surveyor.toml"),
        format!(
            "[catalog]\ndatabase = \"sqlite://catalog.db\"\n\n[server]\nlisten = \"127.0.0.1:{port}\"\n\
             read_tokens = [\"${{{TOKEN_VAR}}}\"]\n\n[[connectors]]\nid = \"files\"\nkind = \"file\"\n\
             schedule = \"*/2 * * * * *\"\npaths = [\"catalog/*.yaml\"]\n"
        ),
    )
    .expect("config");
}

#[test]
fn the_console_asks_for_a_read_token_and_keeps_it_out_of_urls() {
    let Some((chromium, driver)) = browser_or_skip("the console's sign-in browser test") else {
        return;
    };
    let dir = tempfile::tempdir().expect("dir");
    let port = common::free_port();
    write_served_catalog(dir.path(), port);
    let mut cmd = common::surveyor_in(dir.path());
    cmd.args(["serve", "--log", "info"]).env(TOKEN_VAR, TOKEN);
    let mut serve = Proc::spawn("surveyor serve", cmd, dir.path().join("serve.log"));
    let base = format!("http://127.0.0.1:{port}");
    let http = Http::new();
    let bearer = format!("Bearer {TOKEN}");
    wait_for(
        &mut serve,
        120,
        "the scheduled sync of three components",
        || {
            http.get(
                &format!("{base}/api/v1/entities?kind=component&total=true"),
                &[("authorization", &bearer)],
            )
            .ok()
            .and_then(|a| serde_json::from_str::<Value>(&a.body).ok())
            .is_some_and(|v| v["totalItems"] == json!(3))
        },
    );

    let (_chromedriver, driver_url) = start_chromedriver(&driver, dir.path());
    let mut b = new_browser(&driver_url, &chromium, &base);

    // 20: the catalog sends a visitor without a token to the sign-in page.
    b.goto("/");
    assert_eq!(b.path(), "/login");
    assert_eq!(b.h1(), "Sign in");
    let token = b.need("input#token", "sign-in");
    assert_eq!(b.s.attr(&token, "type").as_deref(), Some("password"));
    assert!(
        b.s.find("#entities").is_err(),
        "no catalog before signing in"
    );
    b.shot("20-sign-in");

    // 21: a wrong token is refused, with a message.
    b.s.type_into(&token, "not-the-token").expect("type");
    let submit = b.need("form[action=\"/login\"] button[type=submit]", "sign-in");
    b.follow(&submit, "sign in with a wrong token");
    assert_eq!(b.path(), "/login");
    let alert = b.s.text(&b.need("[role=alert]", "wrong token"));
    assert!(alert.contains("not one this server accepts"), "{alert}");
    assert!(
        b.s.find("#entities").is_err(),
        "no catalog with a wrong token"
    );
    b.shot("21-sign-in-refused");

    // 22: the right token lands on the catalog.
    let token = b.need("input#token", "sign-in again");
    b.s.type_into(&token, TOKEN).expect("type");
    let submit = b.need(
        "form[action=\"/login\"] button[type=submit]",
        "sign-in again",
    );
    b.follow(&submit, "sign in");
    assert_eq!(b.path(), "/");
    assert_eq!(b.h1(), "Catalog");
    let shown = b.texts("#entities tbody tr td:first-child a");
    assert_eq!(
        shown,
        [
            "component:default/alpha",
            "component:default/beta",
            "component:default/gamma"
        ]
    );
    let sign_out = b.need("form[action=\"/logout\"] button", "catalog");
    assert_eq!(b.s.text(&sign_out), "Sign out");
    // The cookie holds the token where scripts cannot read it.
    let cookies = b.s.cookies();
    assert!(
        cookies
            .iter()
            .any(|(n, _, http_only)| n == "surveyor_token" && *http_only),
        "an HttpOnly token cookie: {cookies:?}"
    );
    let script_sees = b.s.script("return document.cookie");
    assert!(
        !script_sees
            .as_str()
            .unwrap_or_default()
            .contains("surveyor_token"),
        "{script_sees}"
    );
    b.shot("22-signed-in");

    // Signed in, the other pages open too.
    b.goto("/entities/component/default/gamma");
    assert_eq!(b.h1(), "component:default/gamma");

    // 23: signing out goes back to the sign-in page, and the catalog stays closed.
    let sign_out = b.need("form[action=\"/logout\"] button", "entity");
    b.follow(&sign_out, "sign out");
    assert_eq!(b.path(), "/login");
    b.need("input#token", "signed out");
    b.goto("/");
    assert_eq!(b.path(), "/login", "signed out, the catalog asks again");
    b.shot("23-signed-out");

    for url in &b.seen {
        assert!(!url.contains(TOKEN), "the token in a URL: {url}");
    }
    assert!(!b.s.source().contains(TOKEN), "the token in the page");
}
