//! An observation on its way through a run: prepared off the receiving task (body and hash
//! computed once), then pending when it differs from what the index knew.

use surveyor_model::Observation;
use surveyor_store::ObservationIndexRow;

use crate::identity::Identity;
use crate::merge::ObservedEntity;

/// An observation with its CPU-heavy parts computed: the canonical body and its hash.
pub(super) struct Prepared {
    pub(super) scope: String,
    pub(super) external_id: String,
    /// The entity's kind when it is not one of Backstage's.
    pub(super) unknown_kind: Option<String>,
    /// The parsed content, body and hash; or why the entity has no valid ref.
    pub(super) content: Result<(ObservedEntity, String, String), String>,
    /// Identity annotations and verified emails: keys shared with other observations.
    pub(super) keys: Vec<String>,
    /// Another name a declared component answers to.
    pub(super) alias: Option<String>,
}

impl Prepared {
    pub(super) fn new(mut obs: Observation, identity: &Identity, source: &str) -> Self {
        identity.apply(source, &mut obs.entity);
        let keys = crate::identity::identity_keys(&obs.entity);
        let alias = obs
            .declared
            .then(|| crate::identity::alias_of(&obs.entity))
            .flatten();
        let content = ObservedEntity::new(&obs.entity, &obs.relations, obs.declared)
            .map(|observed| {
                let body = observed.observation_body();
                let hash = surveyor_model::hash::sha256_hex(body.as_bytes());
                (observed, body, hash)
            })
            .map_err(|e| e.to_string());
        Self {
            unknown_kind: (!obs.entity.is_known_kind()).then(|| obs.entity.kind.clone()),
            scope: obs.scope,
            external_id: obs.external_id,
            content,
            keys,
            alias,
        }
    }
}

/// Where an external id pointed before this run.
pub(super) struct Previous {
    pub(super) entity_ref: String,
    pub(super) live: bool,
}

/// An observation that differs from what is stored and must be written.
pub(super) struct Pending {
    pub(super) scope: String,
    pub(super) external_id: String,
    pub(super) previous: Option<Previous>,
    pub(super) observed: ObservedEntity,
    /// The observation as stored (canonical JSON) and its hash.
    pub(super) body: String,
    pub(super) obs_hash: String,
    pub(super) keys: Vec<String>,
    pub(super) alias: Option<String>,
}

/// What the index knew about an external id before this run, plus whether the crawl saw it.
pub(super) struct Known {
    pub(super) row: ObservationIndexRow,
    pub(super) seen: bool,
}
