//! Crash safety: `surveyor sync` killed with SIGKILL at seeded random moments while it writes a
//! simulated org; every scope must be left exactly as before its run or as after it.
//!
//! Three sources on in-process fakes: two GitHub orgs (one scope each, in catalog namespaces of
//! their own so that no entity spans two scopes) and a Kubernetes cluster (a scope per
//! namespace). The orgs alternate between two states; each trial switches them, starts `surveyor
//! sync`, kills it after a random delay within a clean sync's duration, and compares every
//! (source, scope) — its live observations `(external id, entity ref, hash)`, the live entities
//! they make, and the change rows written about them — with clean syncs of the two states:
//! equal to one or the other, never in between. Then a sync runs to its end: it must succeed,
//! reach the new state exactly, and leave no run `running` (the killed one is marked
//! abandoned). Short mode (CI): 20 kills, 60 repositories per org, SQLite, and Postgres when
//! `SURVEYOR_TEST_DATABASE_URL` is set. Long mode: `SURVEYOR_CRASH_KILLS=500
//! SURVEYOR_CRASH_REPOS=1500`; `SURVEYOR_CRASH_SEED` picks other kill points.

mod common;

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

use surveyor_sim::org::Mutation;
use surveyor_sim::{Cluster, FAKE_TOKEN, GithubFake, KubeFake, Org, OrgSpec};
use surveyor_store::{ChangeFilter, ConnectOptions, EntityFilter, Store};

const PG_ENV: &str = "SURVEYOR_TEST_DATABASE_URL";
/// The GitHub token reaches the child through its environment, as secrets do.
const TOKEN_ENV: &str = "SURVEYOR_CRASH_GITHUB_TOKEN";
/// The connectors, in the order `surveyor sync` runs them.
const SOURCES: [&str; 3] = ["gh-acme", "gh-globex", "k8s"];
/// Repositories per change between the two states of each org (see [`change`]).
const REPOS_PER_MUTATION: usize = 10;
/// How long a sync may take before the test gives up on it.
const RUN_LIMIT: Duration = Duration::from_secs(120);

/// SplitMix64: a few lines, and the same kill points for a seed on every machine.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    fn below(&mut self, n: u64) -> u64 {
        self.next() % n.max(1)
    }
}

fn env_number(name: &str, default: u64) -> u64 {
    match std::env::var(name) {
        Ok(v) => v
            .trim()
            .parse()
            .unwrap_or_else(|_| panic!("{name}={v:?} is not a number")),
        Err(_) => default,
    }
}

/// One state of everything the fakes serve.
#[derive(Clone)]
struct World {
    acme: Org,
    globex: Org,
}

impl World {
    fn cluster(&self) -> Cluster {
        Cluster::from_org(&self.acme, "prod")
    }
}

/// The fakes, switchable between worlds.
struct Fakes {
    github: GithubFake,
    kube: KubeFake,
}

impl Fakes {
    async fn start(world: &World) -> Self {
        Self {
            github: GithubFake::start(vec![world.acme.clone(), world.globex.clone()])
                .await
                .expect("github fake"),
            kube: KubeFake::start(world.cluster()).await.expect("kube fake"),
        }
    }

    fn serve(&self, world: &World) {
        for org in [&world.acme, &world.globex] {
            self.github
                .with_org(&org.name, |o| *o = org.clone())
                .expect("the fake serves the org");
        }
        let cluster = world.cluster();
        self.kube.with_cluster(|c| *c = cluster);
    }
}

/// The two worlds: generated, and after [`MUTATIONS`] changes to each org.
fn worlds(repos: usize) -> (World, World) {
    let spec = |name: &str, seed: u64| OrgSpec {
        name: name.into(),
        seed,
        teams: (repos / 20).max(6),
        people: (repos * 2 / 5).max(30),
        repos,
    };
    let x = World {
        acme: Org::generate(&spec("acme", 42)),
        globex: Org::generate(&spec("globex", 7)),
    };
    let mut y = x.clone();
    let changes = (repos / REPOS_PER_MUTATION).max(8);
    change(
        &mut y.acme,
        changes,
        &[Mutation::RenameRepo, Mutation::DeleteRepo],
    );
    change(
        &mut y.globex,
        changes,
        &[
            Mutation::DeleteRepo,
            Mutation::RemoveWorkload,
            Mutation::DisbandTeam,
            Mutation::PersonLeaves,
        ],
    );
    (x, y)
}

/// `n` changes to `org`: first one each of `once`, the changes that delete something, then
/// only changes that delete nothing. The deletion guard never counts two or fewer deletions of
/// a kind in a scope, so at any size no sync between the states is refused. (`acme` feeds the
/// cluster too, where a renamed repository's workload is a new one and the old one goes.)
fn change(org: &mut Org, n: usize, once: &[Mutation]) {
    const HARMLESS: [Mutation; 3] = [
        Mutation::ChangeOwner,
        Mutation::AddRepo,
        Mutation::ArchiveRepo,
    ];
    for kind in once {
        org.mutate_as(*kind);
    }
    for i in 0..n.saturating_sub(once.len()) {
        org.mutate_as(HARMLESS[i % HARMLESS.len()]);
    }
}

/// A catalog's directory and config for one backend.
struct Setup {
    dir: tempfile::TempDir,
    /// How the test opens the catalog.
    url: String,
    schema: Option<String>,
}

impl Setup {
    fn config(&self, fakes: &Fakes, database: &str) -> PathBuf {
        let github = |id: &str, org: &str| {
            format!(
                "[[connectors]]\nid = \"{id}\"\nkind = \"github\"\norgs = [\"{org}\"]\ntoken = \"${{{TOKEN_ENV}}}\"\napi_url = \"{}\"\nnamespace = \"{org}\"\nrequests_per_second = 10000\n\n",
                fakes.github.url()
            )
        };
        let text = format!(
            "[catalog]\ndatabase = \"{database}\"\n\n{}{}[[connectors]]\nid = \"k8s\"\nkind = \"kubernetes\"\ncontexts = [\"prod\"]\nkubeconfig = \"kubeconfig\"\nnamespace = \"k8s\"\n",
            github(SOURCES[0], "acme"),
            github(SOURCES[1], "globex"),
        );
        std::fs::write(
            self.dir.path().join("kubeconfig"),
            KubeFake::kubeconfig(&[("prod", fakes.kube.url())]),
        )
        .expect("kubeconfig");
        let path = self.dir.path().join("surveyor.toml");
        std::fs::write(&path, text).expect("config");
        path
    }

    async fn open(&self) -> Store {
        Store::connect_with(
            &self.url,
            ConnectOptions {
                schema: self.schema.clone(),
            },
        )
        .await
        .expect("open the catalog")
    }
}

/// A (source, scope) pair: the unit a run writes in one transaction.
type ScopeKey = (String, String);
/// A live observation as `(external id, entity ref, hash)`.
type Seen = (String, String, String);

/// The live state of each (source, scope), and the live entities.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Snapshot {
    /// (source, scope) -> live observations as (external id, entity ref, hash).
    scopes: BTreeMap<ScopeKey, BTreeSet<Seen>>,
    /// Live entity key -> content hash.
    entities: BTreeMap<String, String>,
}

impl Snapshot {
    async fn take(store: &Store) -> Self {
        let mut scopes: BTreeMap<ScopeKey, BTreeSet<Seen>> = BTreeMap::new();
        for source in SOURCES {
            for row in store.observation_index(source).await.expect("index") {
                if row.live {
                    scopes
                        .entry((source.to_string(), row.scope))
                        .or_default()
                        .insert((row.external_id, row.entity_ref, row.hash));
                }
            }
        }
        let entities = store
            .list_entities(&EntityFilter::default())
            .await
            .expect("entities")
            .into_iter()
            .map(|e| (e.entity_ref, e.hash))
            .collect();
        Self { scopes, entities }
    }

    /// Which scope each entity belongs to; a clean snapshot must give every entity one.
    fn owners(&self) -> BTreeMap<String, ScopeKey> {
        let mut owner: BTreeMap<String, ScopeKey> = BTreeMap::new();
        for (key, observations) in &self.scopes {
            for (_, entity_ref, _) in observations {
                if let Some(other) = owner.insert(entity_ref.clone(), key.clone()) {
                    assert_eq!(
                        &other, key,
                        "{entity_ref} is observed in two scopes: the check needs one per entity"
                    );
                }
            }
        }
        owner
    }
}

/// History rows per (source, scope), as sorted `(op, entity ref)` pairs (`restored` counted as
/// `created`).
type History = BTreeMap<ScopeKey, Vec<(String, String)>>;

/// The newest change's sequence number (0 for none).
/// Waits until the Postgres server has ended every session of the killed binary (named after
/// its schema). A COMMIT the binary sent just before it died still runs on the server: read
/// before it lands, the catalog looks as before while the change log, read a moment later,
/// holds the commit's rows. SQLite has no server: a killed process's transaction is gone.
async fn settled(store: &Store, schema: Option<&str>) {
    let (Store::Postgres(pool), Some(schema)) = (store, schema) else {
        return;
    };
    let started = Instant::now();
    loop {
        let sessions: i64 =
            sqlx::query_scalar("SELECT COUNT(*) FROM pg_stat_activity WHERE application_name = $1")
                .bind(schema)
                .fetch_one(pool)
                .await
                .expect("sessions");
        if sessions == 0 {
            return;
        }
        assert!(
            started.elapsed() < Duration::from_secs(30),
            "{sessions} sessions of the killed binary still open after 30 s"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

async fn last_seq(store: &Store) -> i64 {
    store
        .list_changes(&ChangeFilter::default())
        .await
        .expect("changes")
        .last()
        .map_or(0, |c| c.seq)
}

/// Changes written after `seq`, by the scope of the entity they are about.
async fn history_since(
    store: &Store,
    seq: i64,
    before: &Snapshot,
    after: &Snapshot,
) -> Result<History, String> {
    let (owned_before, owned_after) = (before.owners(), after.owners());
    let mut history = History::new();
    let rows = store
        .list_changes(&ChangeFilter {
            after_seq: Some(seq),
            ..ChangeFilter::default()
        })
        .await
        .expect("changes");
    for c in rows {
        let scope = [Some(&c.entity_ref), c.previous_ref.as_ref()]
            .into_iter()
            .flatten()
            .find_map(|r| owned_after.get(r).or_else(|| owned_before.get(r)))
            .ok_or_else(|| {
                format!(
                    "change {} {} belongs to no scope",
                    c.op.as_str(),
                    c.entity_ref
                )
            })?;
        // A thing created by one run and deleted by the next is restored, not created, when
        // it comes back: the same change, made again.
        let op = match c.op.as_str() {
            "restored" => "created",
            op => op,
        };
        history
            .entry(scope.clone())
            .or_default()
            .push((op.to_string(), c.entity_ref));
    }
    for rows in history.values_mut() {
        rows.sort();
    }
    Ok(history)
}

/// Where each scope stood after a kill.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Stood {
    Before,
    After,
    /// The run changed nothing there.
    Unchanged,
}

/// The keys of any of `maps`, in order.
fn keys_of<K: Ord, V>(maps: [&BTreeMap<K, V>; 3]) -> BTreeSet<&K> {
    maps.into_iter().flat_map(BTreeMap::keys).collect()
}

/// Compares a catalog after a kill with the clean `before` and `after`: every scope must equal
/// one of them, and every entity must be what its scope's state makes it.
fn judge(
    now: &Snapshot,
    before: &Snapshot,
    after: &Snapshot,
    history: &History,
    clean_history: &History,
) -> Result<BTreeMap<ScopeKey, Stood>, String> {
    let empty = BTreeSet::new();
    let keys = keys_of([&now.scopes, &before.scopes, &after.scopes]);
    let mut stood = BTreeMap::new();
    for key in keys {
        let n = now.scopes.get(key).unwrap_or(&empty);
        let b = before.scopes.get(key).unwrap_or(&empty);
        let a = after.scopes.get(key).unwrap_or(&empty);
        let s = match (n == b, n == a) {
            (true, true) => Stood::Unchanged,
            (true, false) => Stood::Before,
            (false, true) => Stood::After,
            (false, false) => {
                return Err(format!(
                    "scope {key:?} is between its states: {} observations differ from before, {} from after (of {} / {})",
                    n.symmetric_difference(b).count(),
                    n.symmetric_difference(a).count(),
                    b.len(),
                    a.len()
                ));
            }
        };
        stood.insert(key.clone(), s);
    }
    let (owned_before, owned_after) = (before.owners(), after.owners());
    let refs = keys_of([&now.entities, &before.entities, &after.entities]);
    for r in refs {
        let Some(scope) = owned_before.get(r).or_else(|| owned_after.get(r)) else {
            return Err(format!(
                "entity {r} belongs to no scope in either state (live now: {})",
                now.entities.contains_key(r)
            ));
        };
        let got = now.entities.get(r);
        let (b, a) = (before.entities.get(r), after.entities.get(r));
        let fits = match stood.get(scope) {
            Some(Stood::Before) => got == b,
            Some(Stood::After) => got == a,
            _ => got == b || got == a,
        };
        if !fits {
            return Err(format!(
                "entity {r} of scope {scope:?} ({:?}) is {got:?}; before {b:?}, after {a:?}",
                stood.get(scope)
            ));
        }
    }
    // History too: all of a scope's change rows, or none.
    let none = Vec::new();
    for (scope, s) in &stood {
        let wrote = history.get(scope).unwrap_or(&none);
        let clean = clean_history.get(scope).unwrap_or(&none);
        let fits = match s {
            Stood::Before => wrote.is_empty(),
            Stood::After => wrote == clean,
            Stood::Unchanged => wrote.is_empty() || wrote == clean,
        };
        if !fits {
            return Err(format!(
                "scope {scope:?} ({s:?}) has {} new change rows; a clean run writes {}",
                wrote.len(),
                clean.len()
            ));
        }
    }
    Ok(stood)
}

fn surveyor(config: &Path, dir: &Path, log: &str) -> Command {
    let mut c = common::surveyor_in(dir);
    let out = std::fs::File::create(dir.join(format!("{log}.out"))).expect("log file");
    let err = std::fs::File::create(dir.join(format!("{log}.err"))).expect("log file");
    c.arg("--config")
        .arg(config)
        .args(["sync", "--format", "json"])
        .env(TOKEN_ENV, FAKE_TOKEN)
        .env("NO_COLOR", "1")
        .stdin(Stdio::null())
        .stdout(Stdio::from(out))
        .stderr(Stdio::from(err));
    c
}

/// Waits for the child without blocking the runtime (the fakes serve it from here), up to
/// `limit`; `None` if it is still running then.
async fn wait_for(child: &mut Child, limit: Duration) -> Option<ExitStatus> {
    let started = Instant::now();
    loop {
        if let Some(status) = child.try_wait().expect("child status") {
            return Some(status);
        }
        if started.elapsed() >= limit {
            return None;
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

/// A sync run to its end; panics with its output unless it succeeds.
async fn sync_to_end(config: &Path, dir: &Path, what: &str) -> Duration {
    let started = Instant::now();
    let mut child = surveyor(config, dir, "sync")
        .spawn()
        .expect("spawn surveyor");
    let status = match wait_for(&mut child, RUN_LIMIT).await {
        Some(s) => s,
        None => {
            let _ = child.kill();
            let _ = child.wait();
            panic!("{what}: surveyor sync still running after {RUN_LIMIT:?}");
        }
    };
    let took = started.elapsed();
    if !status.success() {
        let err = std::fs::read_to_string(dir.join("sync.err")).unwrap_or_default();
        let out = std::fs::read_to_string(dir.join("sync.out")).unwrap_or_default();
        // The JSON report says why: each connector's status and error.
        let why: Vec<String> = serde_json::from_str::<serde_json::Value>(&out)
            .ok()
            .and_then(|v| v.as_array().cloned())
            .unwrap_or_default()
            .iter()
            .map(|r| format!("{} {}: {}", r["connector"], r["status"], r["error"]))
            .collect();
        panic!(
            "{what}: surveyor sync ended with {status}:\n{err}{}",
            why.join("\n")
        );
    }
    took
}

/// Runs of `SOURCES` still marked `running`, by id.
async fn running(store: &Store) -> BTreeSet<String> {
    store
        .list_runs(None, 10_000)
        .await
        .expect("runs")
        .into_iter()
        .filter(|r| r.status == "running")
        .map(|r| r.id)
        .collect()
}

/// What the trials of one backend came to.
#[derive(Default)]
struct Figures {
    kills: u64,
    /// Kills that landed after the sync had already finished.
    finished_first: u64,
    all_before: u64,
    all_after: u64,
    mixed: u64,
    /// Runs left `running` by a kill and marked abandoned by the next sync.
    abandoned: u64,
}

async fn crash_trials(setup: Setup, backend: &str) {
    let kills = env_number("SURVEYOR_CRASH_KILLS", 20);
    let seed = env_number("SURVEYOR_CRASH_SEED", 0x5eed_c0de);
    let repos = env_number("SURVEYOR_CRASH_REPOS", 60) as usize;
    let (x, y) = worlds(repos);
    let fakes = Fakes::start(&x).await;
    let dir = setup.dir.path().to_path_buf();
    let database = match &setup.schema {
        Some(schema) => {
            let sep = if setup.url.contains('?') { '&' } else { '?' };
            // Named after its schema, so the test can tell when the killed binary's sessions
            // are gone (`settled`).
            format!(
                "{}{sep}options[search_path]={schema}&application_name={schema}",
                setup.url
            )
        }
        None => setup.url.clone(),
    };
    let config = setup.config(&fakes, &database);

    // Clean syncs of both states, and back: the states are what every kill is judged against.
    // (Opening the catalog first creates the Postgres schema the binary is pointed at.)
    let store = setup.open().await;
    let first = sync_to_end(&config, &dir, "first sync").await;
    let snap_x = Snapshot::take(&store).await;
    let seq = last_seq(&store).await;
    fakes.serve(&y);
    let to_y = sync_to_end(&config, &dir, "clean sync to the second state").await;
    let snap_y = Snapshot::take(&store).await;
    let history_to_y = history_since(&store, seq, &snap_x, &snap_y)
        .await
        .expect("history of the clean sync");
    let seq = last_seq(&store).await;
    fakes.serve(&x);
    let to_x = sync_to_end(&config, &dir, "clean sync back").await;
    assert_eq!(
        Snapshot::take(&store).await,
        snap_x,
        "{backend}: a clean sync back to the first state must give the first snapshot"
    );
    let history_to_x = history_since(&store, seq, &snap_y, &snap_x)
        .await
        .expect("history of the clean sync");
    let scopes: BTreeSet<_> = snap_x.scopes.keys().chain(snap_y.scopes.keys()).collect();
    let changed = scopes
        .iter()
        .filter(|k| snap_x.scopes.get(**k) != snap_y.scopes.get(**k))
        .count();
    assert!(
        changed >= 3,
        "{backend}: the two states should differ in several scopes, not {changed}"
    );
    let clean = (to_y + to_x) / 2;
    println!(
        "{backend}: {repos} repositories per org, {} observations in {} scopes ({changed} differ between the states); first sync {first:.1?}, clean syncs {to_y:.1?} and {to_x:.1?}; {kills} kills, seed {seed:#x}",
        snap_x.scopes.values().map(BTreeSet::len).sum::<usize>(),
        scopes.len(),
    );

    let mut rng = Rng(seed);
    let mut figures = Figures::default();
    let (mut current, mut current_snap) = (&x, &snap_x);
    for trial in 0..kills {
        let (target, target_snap, clean_history) = if std::ptr::eq(current, &x) {
            (&y, &snap_y, &history_to_y)
        } else {
            (&x, &snap_x, &history_to_x)
        };
        let seq = last_seq(&store).await;
        fakes.serve(target);
        let kill_at = Duration::from_millis(rng.below(clean.as_millis() as u64));
        let mut child = surveyor(&config, &dir, "killed")
            .spawn()
            .expect("spawn surveyor");
        let ended = wait_for(&mut child, kill_at).await;
        if let Some(status) = ended {
            let err = std::fs::read_to_string(dir.join("killed.err")).unwrap_or_default();
            assert!(
                status.success(),
                "{backend} trial {trial}: the sync ended by itself before the kill, with {status}:\n{err}"
            );
        }
        let finished_first = ended.is_some();
        // `Child::kill` is SIGKILL on Unix: no destructor, no rollback, no last word.
        let _ = child.kill();
        let _ = child.wait();
        settled(&store, setup.schema.as_deref()).await;
        figures.kills += 1;
        figures.finished_first += u64::from(finished_first);

        let now = Snapshot::take(&store).await;
        let stood = match history_since(&store, seq, current_snap, target_snap).await {
            Ok(history) => judge(&now, current_snap, target_snap, &history, clean_history),
            Err(e) => Err(e),
        }
        .unwrap_or_else(|e| {
            panic!("{backend} trial {trial} (seed {seed:#x}, killed at {kill_at:?}): {e}")
        });
        let moved: Vec<_> = stood.values().filter(|s| **s != Stood::Unchanged).collect();
        if moved.iter().all(|s| **s == Stood::Before) {
            figures.all_before += 1;
        } else if moved.iter().all(|s| **s == Stood::After) {
            figures.all_after += 1;
        } else {
            figures.mixed += 1;
        }
        let left_running = running(&store).await;
        assert!(
            left_running.len() <= 1,
            "{backend} trial {trial}: one sync runs one connector at a time, yet {} runs are running",
            left_running.len()
        );

        // The next sync completes, converges, and closes the killed run.
        sync_to_end(
            &config,
            &dir,
            &format!("{backend} trial {trial}: the sync after the kill"),
        )
        .await;
        let converged = Snapshot::take(&store).await;
        assert!(
            &converged == target_snap,
            "{backend} trial {trial} (seed {seed:#x}, killed at {kill_at:?}): the next sync did not converge: {:?}",
            judge(
                &converged,
                target_snap,
                target_snap,
                &History::new(),
                &History::new()
            )
            .err()
        );
        let still = running(&store).await;
        assert!(
            still.is_empty(),
            "{backend} trial {trial}: runs left running after the next sync: {still:?}"
        );
        let runs = store.list_runs(None, 10_000).await.expect("runs");
        for id in &left_running {
            let row = runs.iter().find(|r| &r.id == id).expect("the killed run");
            assert_eq!(
                row.status, "abandoned",
                "{backend} trial {trial}: the killed run {id} should be marked abandoned"
            );
            figures.abandoned += 1;
        }
        (current, current_snap) = (target, target_snap);
    }
    println!(
        "{backend}: {} kills: {} left every scope as before, {} as after, {} some before and some after; {} landed after the sync had finished; {} killed runs marked abandoned by the next sync; every scope before or after, never between, and every next sync converged",
        figures.kills,
        figures.all_before,
        figures.all_after,
        figures.mixed,
        figures.finished_first,
        figures.abandoned
    );
    if let Some(schema) = &setup.schema {
        let _ = store.drop_schema(schema).await;
    }
    store.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn killed_syncs_leave_each_scope_before_or_after_sqlite() {
    let dir = tempfile::tempdir().expect("tempdir");
    let url = format!("sqlite://{}", dir.path().join("catalog.db").display());
    crash_trials(
        Setup {
            dir,
            url,
            schema: None,
        },
        "sqlite",
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn killed_syncs_leave_each_scope_before_or_after_postgres() {
    let Ok(url) = std::env::var(PG_ENV) else {
        eprintln!("skipped: {PG_ENV} is not set (CI sets it)");
        return;
    };
    let schema = format!(
        "crash_{}_{}",
        std::process::id(),
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_millis())
            .unwrap_or(0)
    );
    crash_trials(
        Setup {
            dir: tempfile::tempdir().expect("tempdir"),
            url,
            schema: Some(schema),
        },
        "postgres",
    )
    .await;
}

/// Twenty processes starting at once on a catalog that does not exist yet (replicas rolled out
/// together, say): every one creates or finds the schema, none fails on a table the others
/// created first.
#[test]
fn concurrent_starts_on_a_new_sqlite_catalog_all_succeed() {
    for round in 0..3 {
        let tmp = tempfile::tempdir().expect("dir");
        let dir = tmp.path();
        std::fs::write(
            dir.join("surveyor.toml"),
            "[catalog]\ndatabase = \"sqlite://catalog.db\"\n\n[[connectors]]\nid = \"files\"\nkind = \"file\"\npaths = [\"*.yaml\"]\n",
        )
        .expect("config");
        let children: Vec<Child> = (0..20)
            .map(|_| {
                common::surveyor_in(dir)
                    .args(["changes", "--format", "json"])
                    .stdin(Stdio::null())
                    .stdout(Stdio::null())
                    .stderr(Stdio::piped())
                    .spawn()
                    .expect("spawn")
            })
            .collect();
        for child in children {
            let out = child.wait_with_output().expect("wait");
            assert!(
                out.status.success(),
                "round {round}: {}",
                String::from_utf8_lossy(&out.stderr)
            );
        }
    }
}
