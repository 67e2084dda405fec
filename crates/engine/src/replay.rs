//! Replays the change log from empty. The catalog promises that doing so rebuilds exactly the
//! live entities it holds; `verify` checks that promise against a store.

use std::collections::BTreeMap;

use serde_json::Value;
use surveyor_store::{ChangeFilter, ChangeOp, ChangeRow, EntityFilter, Store, StoreError};

/// An entity as rebuilt from history.
#[derive(Debug, Clone, PartialEq)]
pub struct Replayed {
    pub display_ref: String,
    pub body: Value,
    pub live: bool,
}

#[derive(Debug, thiserror::Error)]
pub enum ReplayError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("change {seq} ({op} {entity}) does not apply: {detail}")]
    Inapplicable {
        seq: i64,
        op: ChangeOp,
        entity: String,
        detail: String,
    },
    #[error("replayed history differs from the catalog: {0}")]
    Mismatch(String),
}

/// Applies `changes` in order to an empty catalog; the result is keyed by entity uid.
pub fn replay(changes: &[ChangeRow]) -> Result<BTreeMap<String, Replayed>, ReplayError> {
    let mut state: BTreeMap<String, Replayed> = BTreeMap::new();
    for c in changes {
        let fail = |detail: String| ReplayError::Inapplicable {
            seq: c.seq,
            op: c.op,
            entity: c.entity_ref.clone(),
            detail,
        };
        let patch: json_patch::Patch =
            serde_json::from_value(c.patch.clone()).map_err(|e| fail(e.to_string()))?;
        match c.op {
            ChangeOp::Created => {
                let mut body = Value::Null;
                json_patch::patch(&mut body, &patch).map_err(|e| fail(e.to_string()))?;
                state.insert(
                    c.entity_uid.clone(),
                    Replayed {
                        display_ref: c.entity_ref.clone(),
                        body,
                        live: true,
                    },
                );
            }
            ChangeOp::Updated | ChangeOp::Renamed | ChangeOp::Restored => {
                let entry = state
                    .get_mut(&c.entity_uid)
                    .ok_or_else(|| fail("no earlier change created this entity".into()))?;
                json_patch::patch(&mut entry.body, &patch).map_err(|e| fail(e.to_string()))?;
                entry.display_ref.clone_from(&c.entity_ref);
                entry.live = true;
            }
            ChangeOp::Deleted => {
                let entry = state
                    .get_mut(&c.entity_uid)
                    .ok_or_else(|| fail("no earlier change created this entity".into()))?;
                entry.live = false;
            }
        }
    }
    Ok(state)
}

/// Replays the store's whole history and compares it with its live entities.
pub async fn verify(store: &Store) -> Result<usize, ReplayError> {
    let changes = store.list_changes(&ChangeFilter::default()).await?;
    let replayed = replay(&changes)?;
    let live = store.list_entities(&EntityFilter::default()).await?;
    let mut replayed_live: BTreeMap<&str, &Replayed> = replayed
        .iter()
        .filter(|(_, r)| r.live)
        .map(|(uid, r)| (uid.as_str(), r))
        .collect();
    for row in &live {
        let Some(r) = replayed_live.remove(row.uid.as_str()) else {
            return Err(ReplayError::Mismatch(format!(
                "{} is live but history never created it",
                row.display_ref
            )));
        };
        let body: Value = serde_json::from_str(&row.body).map_err(|e| {
            ReplayError::Mismatch(format!("{}: stored body unreadable: {e}", row.display_ref))
        })?;
        if r.body != body || r.display_ref != row.display_ref {
            return Err(ReplayError::Mismatch(format!(
                "{}: history says {} {}, catalog says {}",
                row.display_ref, r.display_ref, r.body, body
            )));
        }
    }
    if let Some((_, r)) = replayed_live.into_iter().next() {
        return Err(ReplayError::Mismatch(format!(
            "{} is live in history but not in the catalog",
            r.display_ref
        )));
    }
    Ok(live.len())
}
