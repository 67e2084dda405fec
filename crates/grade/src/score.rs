//! Scorecards: each entity a scorecard applies to is checked against every check and reaches
//! the highest level whose checks (and those of every level below) all pass.

use std::collections::{BTreeMap, BTreeSet, HashMap};

use chrono::{DateTime, Utc};
use serde_json::Value;
use surveyor_model::score::{Check, Scorecard, Test};
use surveyor_store::{
    EntityFilter, EntityRow, ScoreChanges, ScoreRecord, ScoresDelta, Store, StoreError,
};

use crate::evidence::Claim;

/// One entity's grade on one scorecard.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Graded {
    pub scorecard: String,
    pub entity: String,
    pub owner: Option<String>,
    /// The highest level reached; `None` below the lowest.
    pub level: Option<String>,
    /// The checks it fails and why.
    pub failing: BTreeMap<String, String>,
}

/// What grading needs of the whole catalog before it looks at one entity.
#[derive(Default)]
struct Catalog {
    live: BTreeSet<String>,
    /// Relations of the types the checks name, and `ownedBy`, by source.
    relations: HashMap<String, Vec<(String, String)>>,
    /// Members per group.
    members: HashMap<String, u64>,
    /// Open findings: entity -> rule -> message.
    findings: HashMap<String, BTreeMap<String, String>>,
    tiers: HashMap<String, String>,
}

async fn load(store: &Store, cards: &[Scorecard]) -> Result<Catalog, StoreError> {
    let mut cat = Catalog::default();
    let tests = || cards.iter().flat_map(|c| &c.checks).map(|c| &c.test);
    // Only what the checks read: relation targets' existence, the relation types they name and
    // owners (for the roll-up), group sizes as counts, the findings of the rules they name.
    if tests().any(|t| matches!(t, Test::Relation(_))) {
        for (_, entity_ref, live) in store.entity_keys().await? {
            if live {
                cat.live.insert(entity_ref);
            }
        }
    }
    let mut types: BTreeSet<&str> = ["ownedBy"].into();
    for t in tests() {
        match t {
            Test::Relation(kind) => {
                types.insert(kind);
            }
            Test::OwnerMembers(_) => {
                types.insert("hasMember");
            }
            _ => {}
        }
    }
    let types: Vec<&str> = types.into_iter().collect();
    for (source, kind, target) in store.relations_of_types(&types).await? {
        if kind == "hasMember" {
            *cat.members.entry(source).or_default() += 1;
        } else {
            cat.relations
                .entry(source)
                .or_default()
                .push((kind, target));
        }
    }
    let rules: Vec<String> = tests()
        .filter_map(|t| match t {
            Test::NoFinding(rule) => Some(rule.clone()),
            _ => None,
        })
        .collect::<BTreeSet<_>>()
        .into_iter()
        .collect();
    for (entity, rule, message) in store.open_finding_messages(&rules).await? {
        cat.findings
            .entry(entity.to_ascii_lowercase())
            .or_default()
            .entry(rule)
            .or_insert(message);
    }
    if cards.iter().any(|c| !c.applies_to.tiers.is_empty()) {
        cat.tiers = store
            .classification_values("tier")
            .await?
            .into_iter()
            .collect();
    }
    Ok(cat)
}

/// Grades every entity each scorecard applies to, streaming the catalog one kind at a time,
/// and hands each grade to `each`.
async fn grade_each(
    store: &Store,
    cards: &[Scorecard],
    mut each: impl FnMut(Graded),
) -> Result<(), StoreError> {
    let cat = load(store, cards).await?;
    let globs = Globs::of(cards);
    let kinds: BTreeSet<&str> = cards.iter().map(|c| c.applies_to.kind.as_str()).collect();
    for kind in kinds {
        let filter = EntityFilter {
            kind: Some(kind.to_string()),
            ..EntityFilter::default()
        };
        let of_kind: Vec<&Scorecard> = cards.iter().filter(|c| c.applies_to.kind == kind).collect();
        store
            .for_each_entity(&filter, |row| {
                let entity = Entity::read(&row);
                for card in &of_kind {
                    if applies(card, &entity, &cat) {
                        each(grade_one(card, &entity, &cat, &globs));
                    }
                }
                Ok(())
            })
            .await?;
    }
    Ok(())
}

/// Grades every scorecard and records each one's grades, events and trend at `now`; grades of
/// scorecards no longer configured are dropped. `run_id` is the newest run's. Each grade is
/// compared with the stored one as it is made: only differences are kept until written.
pub async fn record(
    store: &Store,
    cards: &[Scorecard],
    now: DateTime<Utc>,
    run_id: Option<&str>,
) -> Result<BTreeMap<String, ScoresDelta>, StoreError> {
    let names: Vec<String> = cards.iter().map(|c| c.name.clone()).collect();
    store.retain_scorecards(&names).await?;
    let mut changes: HashMap<String, ScoreChanges> = HashMap::new();
    for name in &names {
        changes.insert(name.clone(), store.score_changes(name).await?);
    }
    grade_each(store, cards, |g| {
        if let Some(c) = changes.get_mut(&g.scorecard) {
            c.see(ScoreRecord {
                entity_ref: g.entity,
                owner: g.owner,
                level: g.level,
                failing: g.failing,
            });
        }
    })
    .await?;
    let mut out = BTreeMap::new();
    for name in names {
        if let Some(c) = changes.remove(&name) {
            out.insert(name, store.apply_scores(c, now, run_id).await?);
        }
    }
    Ok(out)
}

/// An entity as the checks read it.
struct Entity {
    key: String,
    body: Value,
    claims: Vec<Claim>,
}

impl Entity {
    fn read(row: &EntityRow) -> Self {
        Self {
            key: row.entity_ref.clone(),
            body: serde_json::from_str(&row.body).unwrap_or(Value::Null),
            claims: serde_json::from_str(&row.sources).unwrap_or_default(),
        }
    }

    fn spec(&self, field: &str) -> Option<String> {
        self.body["spec"][field]
            .as_str()
            .map(|s| s.to_ascii_lowercase())
    }
}

fn applies(card: &Scorecard, e: &Entity, cat: &Catalog) -> bool {
    let a = &card.applies_to;
    let one_of = |list: &[String], v: Option<String>| {
        list.is_empty() || v.is_some_and(|v| list.iter().any(|l| l.eq_ignore_ascii_case(&v)))
    };
    one_of(&a.types, e.spec("type"))
        && one_of(&a.lifecycles, e.spec("lifecycle"))
        && one_of(&a.tiers, cat.tiers.get(&e.key).cloned())
        && a.label.as_ref().is_none_or(|(k, v)| {
            e.body["metadata"]["labels"][k.as_str()].as_str() == Some(v.as_str())
        })
}

/// The compiled globs of `field ... matches` checks, by (scorecard, check).
struct Globs(HashMap<(String, String), globset::GlobMatcher>);

impl Globs {
    fn of(cards: &[Scorecard]) -> Self {
        let mut out = HashMap::new();
        for card in cards {
            for check in &card.checks {
                if let Test::Field {
                    matches: Some(g), ..
                } = &check.test
                    && let Ok(glob) = globset::Glob::new(g)
                {
                    out.insert(
                        (card.name.clone(), check.name.clone()),
                        glob.compile_matcher(),
                    );
                }
            }
        }
        Self(out)
    }
}

fn grade_one(card: &Scorecard, e: &Entity, cat: &Catalog, globs: &Globs) -> Graded {
    let owner = cat
        .relations
        .get(&e.key)
        .into_iter()
        .flatten()
        .find(|(k, _)| k == "ownedBy")
        .map(|(_, t)| t.clone());
    let mut failing = BTreeMap::new();
    for check in &card.checks {
        let glob = globs.0.get(&(card.name.clone(), check.name.clone()));
        if let Err(why) = run(check, e, cat, owner.as_deref(), glob) {
            failing.insert(check.name.clone(), why);
        }
    }
    // The highest level whose checks, and those of the levels below, all pass.
    let mut level = None;
    for (rank, name) in card.levels.iter().enumerate() {
        let blocked = card
            .checks
            .iter()
            .any(|c| failing.contains_key(&c.name) && card.rank(&c.level) == Some(rank));
        if blocked {
            break;
        }
        level = Some(name.clone());
    }
    Graded {
        scorecard: card.name.clone(),
        entity: e.key.clone(),
        owner,
        level,
        failing,
    }
}

/// Passes, or why not.
fn run(
    check: &Check,
    e: &Entity,
    cat: &Catalog,
    owner: Option<&str>,
    glob: Option<&globset::GlobMatcher>,
) -> Result<(), String> {
    match &check.test {
        Test::Field {
            pointer,
            equals,
            matches,
        } => {
            let v = e.body.pointer(pointer).filter(|v| !empty(v));
            let text = v.map(|v| match v {
                Value::String(s) => s.clone(),
                other => other.to_string(),
            });
            match (text, equals, matches) {
                (None, _, _) => Err(format!("{pointer} is not set")),
                (Some(t), Some(want), _) if &t != want => {
                    Err(format!("{pointer} is {t:?}, not {want:?}"))
                }
                (Some(t), _, Some(pattern)) if !glob.is_some_and(|g| g.is_match(&t)) => Err(
                    format!("{pointer} is {t:?}, which does not match {pattern:?}"),
                ),
                _ => Ok(()),
            }
        }
        Test::Relation(kind) => {
            let targets: Vec<&String> = cat
                .relations
                .get(&e.key)
                .into_iter()
                .flatten()
                .filter(|(k, _)| k == kind)
                .map(|(_, t)| t)
                .collect();
            match targets.iter().find(|t| cat.live.contains(t.as_str())) {
                Some(_) => Ok(()),
                None if targets.is_empty() => Err(format!("no {kind} relation")),
                None => Err(format!(
                    "{kind} {}, which the catalog does not have",
                    targets[0]
                )),
            }
        }
        Test::OwnerMembers(n) => match owner {
            None => Err("no owner".into()),
            Some(o) if !o.starts_with("group:") => {
                Err(format!("the owner {o} is a person, not a group"))
            }
            Some(o) => {
                let m = cat.members.get(o).copied().unwrap_or(0);
                if m >= *n {
                    Ok(())
                } else {
                    Err(format!("the owner {o} has {m} members"))
                }
            }
        },
        Test::OnCall => match e.body["spec"]["onCall"]["covered"].as_bool() {
            Some(true) => Ok(()),
            Some(false) => Err("nobody is on call for it now".into()),
            None => Err("no on-call source knows it".into()),
        },
        Test::NoFinding(rule) => match cat.findings.get(&e.key).and_then(|f| f.get(rule)) {
            Some(message) => Err(format!("{rule}: {message}")),
            None => Ok(()),
        },
        Test::Dependency {
            ecosystem,
            package,
            at_least,
        } => {
            for d in e.body["spec"]["packageDependencies"]
                .as_array()
                .into_iter()
                .flatten()
            {
                let filter = surveyor_store::PackageFilter {
                    ecosystem: ecosystem.clone(),
                    package: package.clone(),
                };
                if !filter.matches(d) {
                    continue;
                }
                let req = d["requirement"].as_str().unwrap_or("");
                let file = d["file"].as_str().unwrap_or("a manifest");
                let Some(min) = at_least else {
                    return Err(format!("{file} depends on {package} {req}"));
                };
                match lowest(req) {
                    Some(v) if compare(&v, min) != std::cmp::Ordering::Less => {}
                    Some(v) => {
                        return Err(format!("{file} allows {package} {v} ({req}), below {min}"));
                    }
                    None => {
                        return Err(format!(
                            "{file} depends on {package} {req:?}, which names no lowest version"
                        ));
                    }
                }
            }
            Ok(())
        }
        Test::File(name) => {
            let lower = name.to_ascii_lowercase();
            let found = match lower.as_str() {
                "codeowners" => e.body["metadata"]["annotations"]["surveyor.dev/codeowners"]
                    .as_str()
                    .is_some(),
                "catalog-info.yaml" | "catalog-info.yml" => e.claims.iter().any(|c| c.declared),
                _ => e.body["spec"]["packageDependencies"]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .filter_map(|d| d["file"].as_str())
                    .any(|f| {
                        let f = f.to_ascii_lowercase();
                        f == lower || f.ends_with(&format!("/{lower}"))
                    }),
            };
            if found {
                Ok(())
            } else {
                Err(format!("no {name} found"))
            }
        }
        Test::Link(text) => {
            let hit = e.body["metadata"]["links"]
                .as_array()
                .into_iter()
                .flatten()
                .any(|l| {
                    ["title", "type", "url"].iter().any(|k| {
                        l[*k]
                            .as_str()
                            .is_some_and(|v| v.to_ascii_lowercase().contains(text.as_str()))
                    })
                });
            if hit {
                Ok(())
            } else {
                Err(format!("no {text} link"))
            }
        }
    }
}

fn empty(v: &Value) -> bool {
    match v {
        Value::Null => true,
        Value::String(s) => s.trim().is_empty(),
        Value::Array(a) => a.is_empty(),
        Value::Object(o) => o.is_empty(),
        _ => false,
    }
}

/// The lowest version a requirement allows (`^4.17.20`, `~5.4.0`, `>=0.110`, `v1.2.3`,
/// `2.23.1`, `>=1.0,<2`): its first version number, as written.
pub(crate) fn lowest(requirement: &str) -> Option<String> {
    let first = requirement.split([',', '|', ' ']).find(|p| {
        !p.trim().is_empty() && !p.trim_start().starts_with('<') && !p.trim_start().starts_with('!')
    })?;
    let v = first.trim_start_matches(|c: char| "^~>=v[( ".contains(c));
    let v: String = v
        .chars()
        .take_while(|c| c.is_ascii_digit() || *c == '.')
        .collect();
    let v = v.trim_end_matches('.');
    (!v.is_empty() && v.starts_with(|c: char| c.is_ascii_digit())).then(|| v.to_string())
}

/// Dotted versions compared number by number (`4.17.9 < 4.17.21`; missing parts are 0).
pub(crate) fn compare(a: &str, b: &str) -> std::cmp::Ordering {
    let parts = |v: &str| -> Vec<u64> {
        v.split('.')
            .map(|p| {
                p.chars()
                    .take_while(char::is_ascii_digit)
                    .collect::<String>()
                    .parse()
                    .unwrap_or(0)
            })
            .collect()
    };
    let (a, b) = (parts(a), parts(b));
    for i in 0..a.len().max(b.len()) {
        let o = a.get(i).unwrap_or(&0).cmp(b.get(i).unwrap_or(&0));
        if o != std::cmp::Ordering::Equal {
            return o;
        }
    }
    std::cmp::Ordering::Equal
}

#[cfg(test)]
mod tests {
    use serde_json::json;
    use surveyor_model::score::AppliesTo;

    use super::*;

    #[test]
    fn the_lowest_version_a_requirement_allows() {
        for (req, want) in [
            ("^4.17.20", Some("4.17.20")),
            ("~5.4.0", Some("5.4.0")),
            (">=0.110", Some("0.110")),
            ("v1.2.3", Some("1.2.3")),
            ("2.23.1", Some("2.23.1")),
            (">=1.0,<2", Some("1.0")),
            ("<2, >=1.5", Some("1.5")),
            ("[1.0,2.0)", Some("1.0")),
            ("*", None),
            ("latest", None),
            ("", None),
        ] {
            assert_eq!(lowest(req).as_deref(), want, "{req}");
        }
        use std::cmp::Ordering::*;
        assert_eq!(compare("4.17.9", "4.17.21"), Less);
        assert_eq!(compare("4.17.21", "4.17.21"), Equal);
        assert_eq!(compare("5", "4.17.21"), Greater);
        assert_eq!(compare("1.0", "1"), Equal);
    }

    fn card() -> Scorecard {
        let check = Check::new;
        Scorecard {
            name: "readiness".into(),
            title: "Readiness".into(),
            applies_to: AppliesTo {
                tiers: vec!["tier-1".into()],
                ..AppliesTo::default()
            },
            levels: vec!["bronze".into(), "silver".into(), "gold".into()],
            checks: vec![
                check("owned", "bronze", Test::Relation("ownedBy".into())),
                check("team", "silver", Test::OwnerMembers(2)),
                check("on-call", "silver", Test::OnCall),
                check("runbook", "gold", Test::Link("runbook".into())),
                check(
                    "lodash",
                    "gold",
                    Test::Dependency {
                        ecosystem: Some("npm".into()),
                        package: "lodash".into(),
                        at_least: Some("4.17.21".into()),
                    },
                ),
                check(
                    "no-dispute",
                    "gold",
                    Test::NoFinding("conflicting-owners".into()),
                ),
            ],
        }
    }

    fn entity(body: Value) -> Entity {
        Entity {
            key: "component:default/a".into(),
            body,
            claims: Vec::new(),
        }
    }

    fn catalog(members: u64) -> Catalog {
        let mut cat = Catalog::default();
        cat.live.insert("group:default/team".into());
        cat.relations.insert(
            "component:default/a".into(),
            vec![("ownedBy".into(), "group:default/team".into())],
        );
        cat.members.insert("group:default/team".into(), members);
        cat.tiers
            .insert("component:default/a".into(), "tier-1".into());
        cat
    }

    #[test]
    fn the_level_is_the_highest_whose_checks_and_those_below_all_pass() {
        let globs = Globs::of(&[]);
        let body = json!({
            "metadata": {"links": [{"title": "Runbook", "url": "https://wiki/run"}]},
            "spec": {"onCall": {"covered": true}, "packageDependencies": [
                {"ecosystem": "npm", "package": "lodash", "requirement": "^4.17.21", "file": "package.json"}]}
        });
        let g = grade_one(&card(), &entity(body.clone()), &catalog(3), &globs);
        assert_eq!(g.level.as_deref(), Some("gold"), "{:?}", g.failing);
        assert_eq!(g.owner.as_deref(), Some("group:default/team"));

        // An old lodash fails gold only.
        let mut old = body.clone();
        old["spec"]["packageDependencies"][0]["requirement"] = json!("^4.17.9");
        let g = grade_one(&card(), &entity(old), &catalog(3), &globs);
        assert_eq!(g.level.as_deref(), Some("silver"));
        assert_eq!(
            g.failing["lodash"],
            "package.json allows lodash 4.17.9 (^4.17.9), below 4.17.21"
        );

        // A one-person team fails silver: gold's passing checks do not lift it.
        let g = grade_one(&card(), &entity(body.clone()), &catalog(1), &globs);
        assert_eq!(g.level.as_deref(), Some("bronze"));
        assert_eq!(
            g.failing["team"],
            "the owner group:default/team has 1 members"
        );

        // No owner: below bronze.
        let mut cat = catalog(3);
        cat.relations.clear();
        let g = grade_one(&card(), &entity(body.clone()), &cat, &globs);
        assert_eq!(g.level, None);
        assert_eq!(g.failing["owned"], "no ownedBy relation");

        // An open finding names the rule and its message.
        let mut cat = catalog(3);
        cat.findings.insert(
            "component:default/a".into(),
            [("conflicting-owners".to_string(), "jira names x".to_string())].into(),
        );
        let g = grade_one(&card(), &entity(body), &cat, &globs);
        assert_eq!(g.failing["no-dispute"], "conflicting-owners: jira names x");
    }

    #[test]
    fn a_scorecard_applies_by_tier_type_lifecycle_and_label() {
        let mut c = card();
        let e = entity(json!({"metadata": {"labels": {"env": "prod"}},
                              "spec": {"type": "service", "lifecycle": "production"}}));
        assert!(applies(&c, &e, &catalog(1)));
        assert!(!applies(&c, &e, &Catalog::default()), "no tier: not tier-1");
        c.applies_to.types = vec!["website".into()];
        assert!(!applies(&c, &e, &catalog(1)));
        c.applies_to.types = vec!["SERVICE".into()];
        c.applies_to.label = Some(("env".into(), "dev".into()));
        assert!(!applies(&c, &e, &catalog(1)));
        c.applies_to.label = Some(("env".into(), "prod".into()));
        assert!(applies(&c, &e, &catalog(1)));
    }

    #[test]
    fn field_and_file_checks() {
        let check = |test: Test| Check::new("c", "bronze", test);
        let field = |equals: Option<&str>, matches: Option<&str>| {
            check(Test::Field {
                pointer: "/spec/lifecycle".into(),
                equals: equals.map(str::to_string),
                matches: matches.map(str::to_string),
            })
        };
        let e = entity(
            json!({"spec": {"lifecycle": "production", "packageDependencies": [
            {"file": "web/package.json", "package": "react"}]},
            "metadata": {"annotations": {"surveyor.dev/codeowners": "@acme/team"}}}),
        );
        let cat = Catalog::default();
        assert_eq!(run(&field(None, None), &e, &cat, None, None), Ok(()));
        assert_eq!(
            run(&field(Some("production"), None), &e, &cat, None, None),
            Ok(())
        );
        assert!(run(&field(Some("experimental"), None), &e, &cat, None, None).is_err());
        let glob = globset::Glob::new("prod*").expect("glob").compile_matcher();
        assert_eq!(
            run(&field(None, Some("prod*")), &e, &cat, None, Some(&glob)),
            Ok(())
        );
        let blank = entity(json!({"spec": {"lifecycle": " "}}));
        assert_eq!(
            run(&field(None, None), &blank, &cat, None, None),
            Err("/spec/lifecycle is not set".into())
        );
        for (name, found) in [
            ("CODEOWNERS", true),
            ("package.json", true),
            ("Cargo.toml", false),
            ("catalog-info.yaml", false),
        ] {
            assert_eq!(
                run(&check(Test::File(name.into())), &e, &cat, None, None).is_ok(),
                found,
                "{name}"
            );
        }
    }
}
