//! Identity keys: the annotations and verified emails an observation shares with observations
//! of other sources, and the `joined|<uid>` key that keeps observations once merged into one
//! entity together through renames; kept in step with each batch, and the place each holder is
//! filed under.

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
    let mut new = key_rows(source, writes);
    let (kept, joining) = joined_keys(tx, source, writes, &old).await?;
    new.extend(kept);
    let joining_own: Vec<IdentityKeyRow> = joining
        .iter()
        .filter(|r| r.source == source)
        .cloned()
        .collect();
    new.extend(joining_own);
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
    let mut others: BTreeMap<&str, Vec<IdentityKeyRow>> = BTreeMap::new();
    for r in joining.iter().filter(|r| r.source != source) {
        others.entry(r.source.as_str()).or_default().push(r.clone());
    }
    for (other, rows) in others {
        tx.replace_identity_keys(other, &[], &rows).await?;
    }
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
    // Names a declaration that went gave: they go with it (see `resolve_keys`).
    let deleted: HashSet<&str> = deleted_ids.iter().map(String::as_str).collect();
    let released: HashSet<String> = old
        .iter()
        .filter(|r| r.declared && deleted.contains(r.external_id.as_str()))
        .map(|r| r.own_ref.clone())
        .collect();
    let resolved = resolve_keys(&holders, &key_holders, priority, &released);
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

/// The identity-key rows of written observations, as they name themselves.
pub(super) fn key_rows(source: &str, writes: &[Pending]) -> Vec<IdentityKeyRow> {
    writes
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
        .collect()
}

/// The key that holds the observations of one entity together once one of them is renamed.
const JOINED: &str = "joined|";

/// Identity that survives renames. An observation that names itself differently now (a
/// repository renamed, a login changed) while other observations were merged with it into one
/// entity joins them all under `joined|<entity uid>`: from then on they are one entity named by
/// the highest-precedence of them (the others' names answer as aliases), in whatever order the
/// sources report the rename. A written observation keeps the joined keys it held while it
/// lives. Returns the joined keys of this source's written observations, and the new ones of
/// the observations they join (of any source).
async fn joined_keys(
    tx: &mut StoreTx,
    source: &str,
    writes: &[Pending],
    old: &[IdentityKeyRow],
) -> Result<(Vec<IdentityKeyRow>, Vec<IdentityKeyRow>), ReconcileError> {
    let mut kept = Vec::new();
    let mut prev_own: HashMap<&str, &str> = HashMap::new();
    let mut holds_joined: HashSet<&str> = HashSet::new();
    for r in old {
        prev_own.insert(r.external_id.as_str(), r.own_ref.as_str());
        if r.key.starts_with(JOINED) {
            holds_joined.insert(r.external_id.as_str());
        }
    }
    let by_id: HashMap<&str, &Pending> =
        writes.iter().map(|p| (p.external_id.as_str(), p)).collect();
    for r in old.iter().filter(|r| r.key.starts_with(JOINED)) {
        if let Some(p) = by_id.get(r.external_id.as_str()) {
            kept.push(IdentityKeyRow {
                key: r.key.clone(),
                source: source.to_string(),
                external_id: r.external_id.clone(),
                own_ref: p.observed.entity_ref.key(),
                declared: p.observed.declared,
            });
        }
    }
    // Observations that renamed themselves, by the entity they were part of.
    let mut movers: BTreeMap<String, Vec<&Pending>> = BTreeMap::new();
    for p in writes {
        let Some(prev) = p.previous.as_ref().filter(|prev| prev.live) else {
            continue;
        };
        if holds_joined.contains(p.external_id.as_str()) {
            continue;
        }
        let was = prev_own
            .get(p.external_id.as_str())
            .copied()
            .unwrap_or(prev.entity_ref.as_str());
        if was != p.observed.entity_ref.key() {
            movers.entry(prev.entity_ref.clone()).or_default().push(p);
        }
    }
    if movers.is_empty() {
        return Ok((kept, Vec::new()));
    }
    let refs: Vec<String> = movers.keys().cloned().collect();
    let uids: HashMap<String, String> = tx
        .entities_by_refs(&refs)
        .await?
        .into_iter()
        .filter(|e| e.is_live())
        .map(|e| (e.entity_ref, e.uid))
        .collect();
    let mut members: BTreeMap<String, Vec<surveyor_store::LiveObservationRow>> = BTreeMap::new();
    for o in tx.live_observations(&refs).await? {
        // Only other sources join: two observations of one source under one name are two
        // things that share it, not one thing seen twice.
        if o.source == source {
            continue;
        }
        members.entry(o.entity_ref.clone()).or_default().push(o);
    }
    // A member filed here by other keys names itself as those keys record: one read a source.
    let mut by_source: BTreeMap<&str, Vec<String>> = BTreeMap::new();
    for m in members.values().flatten() {
        by_source
            .entry(m.source.as_str())
            .or_default()
            .push(m.external_id.clone());
    }
    let mut own_refs: HashMap<(String, String), String> = HashMap::new();
    for (member_source, ids) in by_source {
        for k in tx.identity_keys_of(member_source, &ids).await? {
            own_refs.insert((k.source, k.external_id), k.own_ref);
        }
    }
    let mut joining = Vec::new();
    for (entity_ref, moved) in &movers {
        let (Some(uid), Some(members)) = (uids.get(entity_ref), members.get(entity_ref)) else {
            continue;
        };
        let key = format!("{JOINED}{uid}");
        for p in moved {
            joining.push(IdentityKeyRow {
                key: key.clone(),
                source: source.to_string(),
                external_id: p.external_id.clone(),
                own_ref: p.observed.entity_ref.key(),
                declared: p.observed.declared,
            });
        }
        for m in members {
            let own = own_refs
                .get(&(m.source.clone(), m.external_id.clone()))
                .cloned()
                .unwrap_or_else(|| m.entity_ref.clone());
            joining.push(IdentityKeyRow {
                key: key.clone(),
                source: m.source.clone(),
                external_id: m.external_id.clone(),
                own_ref: own,
                declared: m.declared,
            });
        }
    }
    Ok((kept, joining))
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
    released: &HashSet<String>,
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
    // Each holder's root: the highest-precedence holder it follows.
    let mut roots: HashMap<&Id, Id> = HashMap::with_capacity(holders.len());
    for id in holders.keys() {
        // Precedence rises at every step, so the walk ends; the bound is for safety only.
        let mut at = id.clone();
        for _ in 0..16 {
            let next = target(&at);
            if next == at {
                break;
            }
            at = next;
        }
        roots.insert(id, at);
    }
    // A group filed under one name that none of them gives itself any more (the observation
    // that named it is gone) keeps that name: the entity does not move because the source
    // that named it stopped reporting it while others still do. A name a declaration gave
    // goes with the declaration: removing it is a decision, and the others are themselves again.
    let mut groups: HashMap<&Id, Vec<&Id>> = HashMap::new();
    for (id, root) in &roots {
        groups.entry(root).or_default().push(id);
    }
    let mut out = HashMap::with_capacity(holders.len());
    for (root, members) in groups {
        let filed: BTreeSet<&str> = members
            .iter()
            .filter_map(|m| holders.get(*m))
            .map(|h| h.filed_under.as_str())
            .collect();
        let named_here = |place: &str| {
            members
                .iter()
                .filter_map(|m| holders.get(*m))
                .any(|h| h.own_ref == place)
        };
        let place = match filed.iter().next() {
            Some(only) if filed.len() == 1 && !named_here(only) && !released.contains(*only) => {
                (*only).to_string()
            }
            _ => match holders.get(root) {
                Some(h) => h.own_ref.clone(),
                None => continue,
            },
        };
        for m in members {
            out.insert((*m).clone(), place.clone());
        }
    }
    out
}
