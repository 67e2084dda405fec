//! The deletion guards: per scope, over the whole run, and over the entities a scope's
//! writes actually delete, all by one rule ([`refusals`]); and a complete scope that drops to
//! nothing ([`emptied`]).

use std::collections::{BTreeMap, HashMap, HashSet};

use surveyor_store::ObservationIndexRow;

use super::report::{ReconcileOptions, Refusal};
use super::staged::Known;

/// The guard: per kind, deletions over `max_delete_ratio` of the scope's live observations.
///
/// A deleted observation whose entity this source still describes under another external id
/// (a descriptor moved to another file, a workload recreated with a new uid) loses nothing and
/// is not counted.
pub(super) fn guard(
    known: &HashMap<String, Known>,
    scope: &str,
    deletions: &[ObservationIndexRow],
    claimed_refs: &HashSet<String>,
    options: &ReconcileOptions,
) -> Vec<Refusal> {
    over_ratio(known, scope, lost(deletions, claimed_refs), options)
}

/// A scope whose complete crawl saw nothing, where it had live things, deletes nothing at all,
/// whatever the floor: a source that answers "none" is far more often broken (a glob typo, a
/// lost permission) than emptied. Only `--allow-mass-delete`, or a `max_delete_ratio` of 1
/// (any share may go), lets it through.
pub(super) fn emptied(
    known: &HashMap<String, Known>,
    scope: &str,
    deletions: &[ObservationIndexRow],
    claimed_refs: &HashSet<String>,
    options: &ReconcileOptions,
) -> Vec<Refusal> {
    if options.allow_mass_delete || options.max_delete_ratio >= 1.0 {
        return Vec::new();
    }
    let live = live_in_scope(known, scope);
    lost(deletions, claimed_refs)
        .into_iter()
        .map(|(kind, n)| Refusal {
            kind: kind.to_string(),
            live: live.get(kind).copied().unwrap_or(n),
            would_delete: n,
            max_ratio: options.max_delete_ratio,
        })
        .collect()
}

/// Deletions per kind whose entity this source no longer describes at all.
fn lost<'d>(
    deletions: &'d [ObservationIndexRow],
    claimed_refs: &HashSet<String>,
) -> BTreeMap<&'d str, u64> {
    let mut gone: BTreeMap<&str, u64> = BTreeMap::new();
    for d in deletions
        .iter()
        .filter(|d| !claimed_refs.contains(&d.entity_ref))
    {
        *gone.entry(d.kind.as_str()).or_default() += 1;
    }
    gone
}

/// The scope's live observations per kind before this run.
fn live_in_scope<'k>(known: &'k HashMap<String, Known>, scope: &str) -> BTreeMap<&'k str, u64> {
    let mut live: BTreeMap<&str, u64> = BTreeMap::new();
    for k in known
        .values()
        .filter(|k| k.row.live && k.row.scope == scope)
    {
        *live.entry(k.row.kind.as_str()).or_default() += 1;
    }
    live
}

/// The guard over the whole run: per kind, the deletions of every complete scope against the
/// source's live observations of that kind.
pub(super) fn run_guard(
    known: &HashMap<String, Known>,
    complete: &HashSet<&str>,
    claimed_refs: &HashSet<String>,
    options: &ReconcileOptions,
) -> Vec<Refusal> {
    if options.allow_mass_delete {
        return Vec::new();
    }
    let mut live: BTreeMap<&str, u64> = BTreeMap::new();
    let mut gone: BTreeMap<&str, u64> = BTreeMap::new();
    for k in known.values().filter(|k| k.row.live) {
        *live.entry(k.row.kind.as_str()).or_default() += 1;
        if !k.seen
            && complete.contains(k.row.scope.as_str())
            && !claimed_refs.contains(&k.row.entity_ref)
        {
            *gone.entry(k.row.kind.as_str()).or_default() += 1;
        }
    }
    refusals(&live, gone, options)
}

/// The kinds whose deletions (`gone`) exceed `max_delete_ratio` of the scope's live
/// observations of that kind before this run.
pub(super) fn over_ratio(
    known: &HashMap<String, Known>,
    scope: &str,
    gone: BTreeMap<&str, u64>,
    options: &ReconcileOptions,
) -> Vec<Refusal> {
    if gone.is_empty() || options.allow_mass_delete {
        return Vec::new();
    }
    refusals(&live_in_scope(known, scope), gone, options)
}

/// The kinds whose deletions (`gone`) are past the guard's floor and over `max_delete_ratio`
/// of their `live` observations.
fn refusals(
    live: &BTreeMap<&str, u64>,
    gone: BTreeMap<&str, u64>,
    options: &ReconcileOptions,
) -> Vec<Refusal> {
    gone.into_iter()
        .filter_map(|(kind, n)| {
            let total = live.get(kind).copied().unwrap_or(n).max(1);
            let mass =
                n > options.mass_delete_floor && n as f64 / total as f64 > options.max_delete_ratio;
            mass.then(|| Refusal {
                kind: kind.to_string(),
                live: total,
                would_delete: n,
                max_ratio: options.max_delete_ratio,
            })
        })
        .collect()
}
