//! `[[scorecards]]` and their `[[scorecards.checks]]`: parsed, and every mistake reported at its
//! `file:line:column: key` like the rest of the file.

use std::collections::BTreeSet;

use surveyor_model::score::{AppliesTo, Check, Scorecard, Test};
use toml::Spanned;
use toml::de::{DeTable, DeValue};

use super::{
    CHECK_KEYS, Report, SCORECARD_KEYS, TESTS, check_keys, get_str, key_span, string_list,
    tables_of, type_name, whole_number,
};

/// A name as entity names are (`operational-readiness`, `gold`, `tier-1`), lower-cased.
pub(super) fn name(text: &str, what: &str) -> Result<String, String> {
    surveyor_model::names::entity_name(text.trim())
        .filter(|n| n.eq_ignore_ascii_case(text.trim()))
        .map(|n| n.to_ascii_lowercase())
        .ok_or_else(|| format!("{text:?} is not a {what} name (letters, digits, `-`, `_`, `.`)"))
}

/// The `name` of the table at `path`: present, a name, and not one of `taken`; else an error
/// at its key.
fn unique_name(
    t: &DeTable<'_>,
    path: &str,
    span: std::ops::Range<usize>,
    what: &str,
    taken: &[&str],
    r: &mut Report<'_>,
) -> Option<String> {
    let key = format!("{path}.name");
    let at = key_span(t, "name").unwrap_or(span.clone());
    let Some(raw) = get_str(t, "name", &key, r) else {
        if !t.contains_key("name") {
            r.push(span, &key, format!("missing: the {what}'s name"), None);
        }
        return None;
    };
    match name(&raw, what) {
        Ok(n) if taken.contains(&n.as_str()) => {
            r.push(at, &key, format!("a second {what} named {n:?}"), None);
            None
        }
        Ok(n) => Some(n),
        Err(e) => {
            r.push(at, &key, e, None);
            None
        }
    }
}

pub(super) fn parse(item: Option<&Spanned<DeValue<'_>>>, r: &mut Report<'_>) -> Vec<Scorecard> {
    let mut out: Vec<Scorecard> = Vec::new();
    for (_, path, span, t) in tables_of(item, "scorecards", r) {
        check_keys(t, &path, SCORECARD_KEYS, r);
        let key = |k: &str| format!("{path}.{k}");
        let at = |k: &str| key_span(t, k).unwrap_or(span.clone());
        let taken: Vec<&str> = out.iter().map(|c| c.name.as_str()).collect();
        let card_name = unique_name(t, &path, span.clone(), "scorecard", &taken, r);
        let mut levels: Vec<String> = Vec::new();
        let raw_levels = string_list(t, "levels", &key("levels"), r);
        for (i, l) in raw_levels.iter().enumerate() {
            match name(l, "level") {
                Ok(l) if levels.contains(&l) => r.push(
                    at("levels"),
                    &format!("{}[{i}]", key("levels")),
                    format!("level {l:?} is listed twice"),
                    None,
                ),
                Ok(l) => levels.push(l),
                Err(e) => r.push(at("levels"), &format!("{}[{i}]", key("levels")), e, None),
            }
        }
        if !t.contains_key("levels") {
            r.push(
                span.clone(),
                &key("levels"),
                "missing: the levels, lowest first (levels = [\"bronze\", \"silver\", \"gold\"])"
                    .into(),
                None,
            );
        } else if raw_levels.is_empty() {
            r.push(
                at("levels"),
                &key("levels"),
                "needs at least one level".into(),
                None,
            );
        }
        let mut applies = AppliesTo::default();
        if let Some(kind) = get_str(t, "kind", &key("kind"), r) {
            applies.kind = kind.trim().to_ascii_lowercase();
        }
        applies.types = string_list(t, "type", &key("type"), r);
        applies.tiers = string_list(t, "tier", &key("tier"), r);
        applies.lifecycles = string_list(t, "lifecycle", &key("lifecycle"), r);
        if let Some(label) = get_str(t, "label", &key("label"), r) {
            match label.split_once('=') {
                Some((k, v)) if surveyor_model::validate::is_valid_label_key(k.trim()) => {
                    applies.label = Some((k.trim().to_string(), v.trim().to_string()));
                }
                _ => r.push(
                    at("label"),
                    &key("label"),
                    format!("{label:?}: write a label as key=value"),
                    None,
                ),
            }
        }
        let checks = checks(t.get("checks"), &key("checks"), &levels, r);
        if !t.contains_key("checks") {
            r.push(
                span.clone(),
                &key("checks"),
                "missing: the checks ([[scorecards.checks]])".into(),
                None,
            );
        }
        if let Some(card_name) = card_name {
            let title = get_str(t, "title", &key("title"), r).unwrap_or_else(|| card_name.clone());
            out.push(Scorecard {
                name: card_name,
                title,
                applies_to: applies,
                levels,
                checks,
            });
        }
    }
    out
}

fn checks(
    item: Option<&Spanned<DeValue<'_>>>,
    prefix: &str,
    levels: &[String],
    r: &mut Report<'_>,
) -> Vec<Check> {
    let mut out = Vec::new();
    let mut names = BTreeSet::new();
    for (i, _, span, t) in tables_of(item, "checks", r) {
        let path = format!("{prefix}[{i}]");
        check_keys(t, &path, CHECK_KEYS, r);
        let key = |k: &str| format!("{path}.{k}");
        let at = |k: &str| key_span(t, k).unwrap_or(span.clone());
        let taken: Vec<&str> = names.iter().map(String::as_str).collect();
        let check_name = unique_name(t, &path, span.clone(), "check", &taken, r);
        if let Some(n) = &check_name {
            names.insert(n.clone());
        }
        let level = match get_str(t, "level", &key("level"), r) {
            Some(l) => {
                let l = l.trim().to_ascii_lowercase();
                if levels.contains(&l) {
                    Some(l)
                } else {
                    r.push(
                        at("level"),
                        &key("level"),
                        format!("{l:?} is not one of the scorecard's levels"),
                        Some(format!("expected one of: {}", levels.join(", "))),
                    );
                    None
                }
            }
            None => {
                r.push(
                    span.clone(),
                    &key("level"),
                    "missing: the level this check belongs to".into(),
                    None,
                );
                None
            }
        };
        let given: Vec<&str> = TESTS
            .iter()
            .copied()
            .filter(|k| t.contains_key(*k))
            .collect();
        let test = match given[..] {
            [one] => test(t, one, &key, &at, r),
            [] => {
                r.push(
                    span.clone(),
                    &path,
                    "a check needs one test".into(),
                    Some(format!("one of: {}", TESTS.join(", "))),
                );
                None
            }
            _ => {
                r.push(
                    at(given[1]),
                    &key(given[1]),
                    format!("a check makes one test; this one also has `{}`", given[0]),
                    Some("write a second check".into()),
                );
                None
            }
        };
        for extra in ["equals", "matches"] {
            if t.contains_key(extra) && given != ["field"] {
                r.push(
                    at(extra),
                    &key(extra),
                    format!("`{extra}` goes with `field`"),
                    None,
                );
            }
        }
        if let (Some(name), Some(level), Some(test)) = (check_name, level, test) {
            out.push(Check { name, level, test });
        }
    }
    out
}

/// The test under key `k`.
fn test(
    t: &DeTable<'_>,
    k: &str,
    key: &dyn Fn(&str) -> String,
    at: &dyn Fn(&str) -> std::ops::Range<usize>,
    r: &mut Report<'_>,
) -> Option<Test> {
    let text = |r: &mut Report<'_>| {
        let v = get_str(t, k, &key(k), r)?;
        let v = v.trim().to_string();
        if v.is_empty() {
            r.push(at(k), &key(k), "must not be empty".into(), None);
            return None;
        }
        Some(v)
    };
    match k {
        "field" => {
            let raw = text(r)?;
            // `spec.owner` or `/spec/owner`.
            let pointer = if raw.starts_with('/') {
                raw
            } else {
                format!("/{}", raw.replace('.', "/"))
            };
            let equals = get_str(t, "equals", &key("equals"), r);
            let matches = get_str(t, "matches", &key("matches"), r);
            if equals.is_some() && matches.is_some() {
                r.push(
                    at("matches"),
                    &key("matches"),
                    "give `equals` or `matches`, not both".into(),
                    None,
                );
            }
            if let Some(glob) = &matches
                && let Err(e) = globset::Glob::new(glob)
            {
                r.push(
                    at("matches"),
                    &key("matches"),
                    format!("invalid glob {glob:?}: {}", e.kind()),
                    None,
                );
                return None;
            }
            Some(Test::Field {
                pointer,
                equals,
                matches,
            })
        }
        "relation" => Some(Test::Relation(text(r)?)),
        "no_finding" => Some(Test::NoFinding(text(r)?.to_ascii_lowercase())),
        "file" => Some(Test::File(text(r)?)),
        "link" => Some(Test::Link(text(r)?.to_ascii_lowercase())),
        "owner_members_at_least" => {
            let v = t.get(k)?;
            match whole_number(v.get_ref(), 1, 100_000) {
                Ok(n) => Some(Test::OwnerMembers(n)),
                Err(e) => {
                    r.push(v.span(), &key(k), e, None);
                    None
                }
            }
        }
        "on_call" => match t.get(k).map(|v| (v.span(), v.get_ref())) {
            Some((_, DeValue::Boolean(true))) => Some(Test::OnCall),
            Some((span, DeValue::Boolean(false))) => {
                r.push(
                    span,
                    &key(k),
                    "only `on_call = true` is a check".into(),
                    None,
                );
                None
            }
            Some((span, other)) => {
                r.push(
                    span,
                    &key(k),
                    format!("expected a boolean, found {}", type_name(other)),
                    None,
                );
                None
            }
            None => None,
        },
        "dependency" | "dependency_absent" => {
            let raw = text(r)?;
            let (package, at_least) = match raw.split_once(">=") {
                Some((p, v)) if k == "dependency" => {
                    (p.trim().to_string(), Some(v.trim().to_string()))
                }
                Some(_) => {
                    r.push(
                        at(k),
                        &key(k),
                        "dependency_absent takes no version".into(),
                        Some(
                            "`dependency = \"npm:lodash >= 4.17.21\"` allows it from that version"
                                .into(),
                        ),
                    );
                    return None;
                }
                None if k == "dependency" => {
                    r.push(at(k), &key(k), format!("{raw:?}: give the lowest version allowed"), Some("dependency = \"npm:lodash >= 4.17.21\", or dependency_absent = \"npm:lodash\"".into()));
                    return None;
                }
                None => (raw.clone(), None),
            };
            if at_least
                .as_deref()
                .is_some_and(|v| !v.starts_with(|c: char| c.is_ascii_digit()))
            {
                r.push(
                    at(k),
                    &key(k),
                    format!("{raw:?}: the version must start with a digit"),
                    None,
                );
                return None;
            }
            const ECOSYSTEMS: [&str; 5] = ["cargo", "npm", "go", "pypi", "maven"];
            let (ecosystem, package) = match package.split_once(':') {
                Some((e, p)) if ECOSYSTEMS.contains(&e.to_ascii_lowercase().as_str()) => {
                    (Some(e.to_ascii_lowercase()), p.to_string())
                }
                _ => (None, package),
            };
            if package.is_empty() {
                r.push(at(k), &key(k), "the package name is empty".into(), None);
                return None;
            }
            Some(Test::Dependency {
                ecosystem,
                package,
                at_least,
            })
        }
        _ => None,
    }
}
