//! Who said what: the evidence beside each value, and the sources' claims it is read from.

use std::collections::BTreeMap;

use serde_json::Value;

/// One source's word for a value (`{"source": "pagerduty", "said": "incident urgency high"}`).
/// `surveyor` is the classifier itself (which rule held), `catalog` the catalog's graph.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Evidence {
    pub source: String,
    pub said: String,
}

impl Evidence {
    pub fn new(source: &str, said: &str) -> Self {
        Self {
            source: source.to_string(),
            said: said.to_string(),
        }
    }
}

/// A source's claim on a merged entity (the stored `sources` column), as far as classification
/// reads it.
#[derive(Debug, Clone, serde::Deserialize)]
pub(crate) struct Claim {
    pub(crate) source: String,
    #[serde(default)]
    pub(crate) declared: bool,
    #[serde(default)]
    pub(crate) winner: bool,
    #[serde(default)]
    pub(crate) fields: Vec<String>,
    /// Values this source gave that are not the ones shown, by JSON pointer.
    #[serde(default)]
    pub(crate) disagrees: BTreeMap<String, Value>,
}

/// Which source supplied a field: the claim listing it, else the winner.
pub(crate) fn supplier<'a>(claims: &'a [Claim], pointer: &str) -> Option<&'a Claim> {
    claims
        .iter()
        .find(|c| c.fields.iter().any(|f| f == pointer))
        .or_else(|| claims.iter().find(|c| c.winner))
}
