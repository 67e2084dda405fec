//! Identity keys: the annotations and verified emails an observation shares with observations
//! of other sources, kept in step with each batch, and the place each holder is filed under.

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};

use surveyor_store::{IdentityKeyRow, StoreTx};

use super::report::ReconcileError;
use super::staged::Pending;

/// An observation that identity resolution files under another ref.
pub(super) struct Refiling {
    pub(super) source: String,
    pub(super) external_id: String,
    pub(super) own_ref: String,
    pub(super) from: String,
    pub(super) to: String,
}

/// Keeps the identity-key index in step with this batch and files every observation that
/// shares a key under the ref it resolves to (see [`resolve_keys`]). Returns the moves and
/// the alias names that appeared or went.
pub(super) async fn resolve_identity(
    tx: &mut StoreTx,
    source: &str,
    priority: &BTreeMap<String, usize>,
    writes: &[Pending],
    deleted_ids: &[String],
) -> Result<(Vec<Refiling>, Vec<String>), ReconcileError> {
    // Keys and aliases are stored with observations, so only ids this source stored before
    // can hold any: an initial load asks for nothing and deletes nothing here.
    let stored: BTreeSet<String> = writes
        .iter()
        .filter(|p| p.previous.is_some())
        .map(|p| p.external_id.clone())
        .chain(deleted_ids.iter().cloned())
        .collect();
    let ids: Vec<String> = stored.iter().cloned().collect();
    let (old, old_aliases) = if ids.is_empty() {
        (Vec::new(), Vec::new())
    } else {
        (
            tx.identity_keys_of(source, &ids).await?,
            tx.identity_aliases_of(source, &ids).await?,
        )
    };
    let new: Vec<IdentityKeyRow> = writes
        .iter()
        .flat_map(|p| {
            p.keys.iter().map(|k| IdentityKeyRow {
                key: k.clone(),
                source: source.to_string(),
                external_id: p.external_id.clone(),
                own_ref: p.observed.entity_ref.key(),
                declared: p.observed.declared,
            })
        })
        .collect();
    let aliases: Vec<(String, String, String, String)> = writes
        .iter()
        .filter_map(|p| {
            Some((
                source.to_string(),
                p.external_id.clone(),
                p.alias.clone()?,
                p.observed.entity_ref.key(),
            ))
        })
        .collect();
    if old.is_empty() && new.is_empty() && aliases.is_empty() && old_aliases.is_empty() {
        return Ok((Vec::new(), Vec::new()));
    }
    let touched: BTreeSet<String> = old
        .iter()
        .chain(&new)
        .map(|r| r.external_id.clone())
        .chain(aliases.iter().map(|a| a.1.clone()))
        .chain(old_aliases.iter().map(|a| a.0.clone()))
        .collect();
    // Aliases that appeared or went (or now mean another entity): what points at either
    // name must be merged again.
    let before: BTreeSet<(String, String, String)> = old_aliases.into_iter().collect();
    let after: BTreeSet<(String, String, String)> = aliases
        .iter()
        .map(|(_, ext, alias, to)| (ext.clone(), alias.clone(), to.clone()))
        .collect();
    let alias_names: BTreeSet<String> = before
        .symmetric_difference(&after)
        .flat_map(|(_, alias, to)| [alias.clone(), to.clone()])
        .collect();
    let cleared: Vec<String> = touched
        .into_iter()
        .filter(|id| stored.contains(id))
        .collect();
    tx.replace_identity_keys(source, &cleared, &new).await?;
    tx.add_identity_aliases(&aliases).await?;

    // Every holder of an affected key, and every key those holders hold, a few hops out.
    let mut seen_keys: BTreeSet<String> = old.iter().chain(&new).map(|r| r.key.clone()).collect();
    let mut frontier: Vec<String> = seen_keys.iter().cloned().collect();
    let mut holders: HashMap<(String, String), KeyHolder> = HashMap::new();
    let mut key_holders: HashMap<String, Vec<(String, String)>> = HashMap::new();
    for _ in 0..IDENTITY_HOPS {
        if frontier.is_empty() {
            break;
        }
        let mut fresh: BTreeMap<String, Vec<String>> = BTreeMap::new();
        for h in tx.identity_holders(&frontier).await? {
            let id = (h.key.source.clone(), h.key.external_id.clone());
            key_holders
                .entry(h.key.key.clone())
                .or_default()
                .push(id.clone());
            holders.entry(id).or_insert_with(|| {
                fresh
                    .entry(h.key.source.clone())
                    .or_default()
                    .push(h.key.external_id.clone());
                KeyHolder {
                    own_ref: h.key.own_ref.clone(),
                    declared: h.key.declared,
                    filed_under: h.filed_under.clone(),
                    keys: Vec::new(),
                }
            });
        }
        frontier = Vec::new();
        for (holder_source, exts) in fresh {
            for row in tx.identity_keys_of(&holder_source, &exts).await? {
                if let Some(h) = holders.get_mut(&(holder_source.clone(), row.external_id.clone()))
                {
                    h.keys.push(row.key.clone());
                }
                if seen_keys.insert(row.key.clone()) {
                    frontier.push(row.key);
                }
            }
        }
    }
    let resolved = resolve_keys(&holders, &key_holders, priority);
    let mut moves: Vec<Refiling> = Vec::new();
    for ((source, external_id), to) in resolved {
        let Some(h) = holders.get(&(source.clone(), external_id.clone())) else {
            continue;
        };
        if h.filed_under != to {
            moves.push(Refiling {
                source,
                external_id,
                own_ref: h.own_ref.clone(),
                from: h.filed_under.clone(),
                to,
            });
        }
    }
    moves.sort_by(|a, b| (&a.source, &a.external_id).cmp(&(&b.source, &b.external_id)));
    let mut by_source: BTreeMap<&str, Vec<(String, String, String)>> = BTreeMap::new();
    for m in &moves {
        by_source.entry(m.source.as_str()).or_default().push((
            m.external_id.clone(),
            m.own_ref.clone(),
            m.to.clone(),
        ));
    }
    for (holder_source, list) in by_source {
        tx.refile_observations(holder_source, &list).await?;
    }
    Ok((moves, alias_names.into_iter().collect()))
}

/// How far identity keys are followed from the keys a batch touched.
const IDENTITY_HOPS: usize = 3;

/// A live observation holding identity keys.
#[derive(Debug, Clone)]
struct KeyHolder {
    own_ref: String,
    declared: bool,
    filed_under: String,
    keys: Vec<String>,
}

/// Where each holder belongs: a declared observation stays at its own ref; any other follows
/// the highest-precedence holder (declared, then configured source order, then source and
/// external id) of the keys it holds, and that one's place in turn. A key that two declared
/// observations with different refs both hold is ambiguous and joins nothing.
fn resolve_keys(
    holders: &HashMap<(String, String), KeyHolder>,
    key_holders: &HashMap<String, Vec<(String, String)>>,
    priority: &BTreeMap<String, usize>,
) -> HashMap<(String, String), String> {
    type Id = (String, String);
    let rank = |id: &Id, h: &KeyHolder| {
        (
            !h.declared,
            priority.get(&id.0).copied().unwrap_or(usize::MAX),
            id.0.clone(),
            id.1.clone(),
        )
    };
    let ambiguous: HashSet<&str> = key_holders
        .iter()
        .filter(|(_, ids)| {
            let refs: BTreeSet<&str> = ids
                .iter()
                .filter_map(|id| holders.get(id))
                .filter(|h| h.declared)
                .map(|h| h.own_ref.as_str())
                .collect();
            refs.len() > 1
        })
        .map(|(k, _)| k.as_str())
        .collect();
    let target = |id: &Id| -> Id {
        let Some(h) = holders.get(id) else {
            return id.clone();
        };
        if h.declared {
            return id.clone();
        }
        let mut best = (rank(id, h), id.clone());
        for key in h.keys.iter().filter(|k| !ambiguous.contains(k.as_str())) {
            for other in key_holders.get(key).into_iter().flatten() {
                if let Some(oh) = holders.get(other) {
                    let r = rank(other, oh);
                    if r < best.0 {
                        best = (r, other.clone());
                    }
                }
            }
        }
        best.1
    };
    let mut out = HashMap::with_capacity(holders.len());
    for (id, h) in holders {
        // Precedence rises at every step, so the walk ends; the bound is for safety only.
        let mut at = id.clone();
        for _ in 0..16 {
            let next = target(&at);
            if next == at {
                break;
            }
            at = next;
        }
        let place = holders.get(&at).map_or(&h.own_ref, |t| &t.own_ref);
        out.insert(id.clone(), place.clone());
    }
    out
}
