//! The JSON bodies of `/api/v1` answers as types: they serialize the answers and describe them in
//! the OpenAPI document, so the two cannot drift apart. Every field is camelCase; the store's
//! rows (which the CLI prints as they are) are turned into these at the edge.
//!
//! Entity documents are the exception to "serialized from these types": list pages splice the
//! stored body as text (see `views::entity_text`), so [`EntityDocument`] and [`EntityPage`] only
//! describe them.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use serde::Serialize;
use serde_json::Value;
use surveyor_store::{ChangeRow, FindingRow, RunRow};
use utoipa::ToSchema;

/// Every error: a stable machine-readable `error` code and a sentence for people.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct ErrorBody {
    /// `bad_request`, `not_found`, `unauthorized`, `forbidden`, `method_not_allowed`,
    /// `conflict`, `payload_too_large`, `uri_too_long`, `request_timeout`, `unavailable`,
    /// `overloaded` or `internal`.
    #[schema(example = "bad_request")]
    pub error: String,
    #[schema(example = "limit must be at least 1")]
    pub detail: String,
}

/// An entity as `/api/v1` serves it: Backstage's entity (`apiVersion`, `kind`, `metadata`,
/// `spec`, as the sources described it), its `relations`, and surveyor's bookkeeping.
#[allow(dead_code)] // describes text spliced in `views::entity_text`; never built
#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct EntityDocument {
    #[schema(example = "backstage.io/v1alpha1")]
    pub api_version: String,
    #[schema(example = "Component")]
    pub kind: String,
    /// `name`, `namespace`, `title`, `description`, `labels`, `annotations`, `tags`, `links`.
    #[schema(value_type = Object, example = json!({"name": "web", "namespace": "default"}))]
    pub metadata: Value,
    /// Kind-specific, as in Backstage (`type`, `owner`, `lifecycle`, `dependsOn`, ...).
    #[schema(value_type = Object, example = json!({"type": "service", "owner": "group:default/team-a"}))]
    pub spec: Value,
    pub relations: Vec<RelationView>,
    pub surveyor: SurveyorInfo,
}

/// One relation from the entity.
#[allow(dead_code)] // serialized by `views::relations_json`, which Backstage routes share
#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct RelationView {
    /// `ownedBy`, `dependsOn`, `partOf`, ... (Backstage's relation types).
    #[schema(example = "ownedBy")]
    pub r#type: String,
    #[schema(example = "group:default/team-a")]
    pub target_ref: String,
    /// The target's parts; `null` when its ref does not parse.
    pub target: Option<RelationTarget>,
}

#[allow(dead_code)] // see RelationView
#[derive(Serialize, ToSchema)]
pub struct RelationTarget {
    pub kind: String,
    pub namespace: String,
    pub name: String,
}

/// surveyor's bookkeeping on an entity.
#[allow(dead_code)] // see EntityDocument
#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct SurveyorInfo {
    /// The entity's ref as displayed.
    #[schema(example = "component:default/web")]
    pub r#ref: String,
    /// Stable across renames.
    pub uid: String,
    /// Each source that describes it: `source`, `declared`, `winner`, `fields`, and where it
    /// disagrees (`disagrees`, `cosmetic`, `own`: maps keyed by field path).
    #[schema(value_type = Vec<Object>)]
    pub sources: Value,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    /// Set on a tombstone (`includeDeleted=true`).
    pub deleted_at: Option<DateTime<Utc>>,
    /// On a single entity: the link to its history.
    #[schema(example = "/api/v1/changes?entity=component:default/web")]
    pub history: Option<String>,
    /// On a single Component: its classification, by facet (`tier`, `stack`, `runtime`,
    /// `lifecycle`, `domain`, `system`), each value with its evidence.
    pub classification: Option<BTreeMap<String, Vec<ClassifiedValue>>>,
}

/// One value of a facet, and why.
#[allow(dead_code)] // see EntityDocument
#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct ClassifiedValue {
    #[schema(example = "tier-1")]
    pub value: String,
    /// A source declared it (`surveyor.dev/tier`, a descriptor's field); else derived.
    pub declared: bool,
    /// Which source said what.
    #[schema(value_type = Vec<Object>, example = json!([{"source": "pagerduty", "said": "incident urgency high"}]))]
    pub evidence: Value,
    /// When the value was first given.
    pub since: DateTime<Utc>,
}

/// How many Components have each value of each facet, most first.
#[derive(Debug, Serialize, ToSchema)]
pub struct ClassificationCounts {
    #[schema(example = json!({"tier": [{"value": "tier-1", "count": 11}]}))]
    pub facets: BTreeMap<String, Vec<ValueCount>>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct ValueCount {
    pub value: String,
    pub count: i64,
}

/// A page of entities.
#[allow(dead_code)] // see EntityDocument
#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct EntityPage {
    pub items: Vec<EntityDocument>,
    /// The `cursor` for the next page; `null` on the last.
    pub next_cursor: Option<String>,
    /// Every match, with `total=true` only.
    pub total_items: Option<u64>,
}

/// The entities reachable from one, as nodes and edges.
#[derive(Debug, Serialize, ToSchema)]
pub struct Graph {
    pub nodes: Vec<GraphNode>,
    pub edges: Vec<GraphEdge>,
    /// The graph reached `max_page_size` nodes and stopped growing.
    pub truncated: bool,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct GraphNode {
    #[schema(example = "component:default/web")]
    pub r#ref: String,
    /// Hops from the entity asked for (0 for itself).
    pub depth: u32,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct GraphEdge {
    pub source: String,
    #[schema(example = "dependsOn")]
    pub r#type: String,
    pub target: String,
}

/// One change in the catalog's history.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct ChangeView {
    /// Its position in the history; increases with every change.
    pub seq: i64,
    pub at: DateTime<Utc>,
    pub run_id: String,
    /// The connector whose run made it.
    #[schema(example = "github")]
    pub source: String,
    pub entity_uid: String,
    #[schema(example = "component:default/web")]
    pub entity_ref: String,
    /// The ref before a rename.
    pub previous_ref: Option<String>,
    /// `created`, `updated`, `renamed`, `deleted` or `restored`.
    #[schema(example = "updated")]
    pub op: String,
    /// RFC 6902 JSON Patch from the previous body to the new one.
    #[schema(value_type = Vec<Object>, example = json!([{"op": "replace", "path": "/spec/owner", "value": "group:default/team-b"}]))]
    pub patch: Value,
}

impl From<ChangeRow> for ChangeView {
    fn from(r: ChangeRow) -> Self {
        Self {
            seq: r.seq,
            at: r.at,
            run_id: r.run_id,
            source: r.source,
            entity_uid: r.entity_uid,
            entity_ref: r.entity_ref,
            previous_ref: r.previous_ref,
            op: r.op.as_str().to_string(),
            patch: r.patch,
        }
    }
}

/// A page of the history.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct ChangePage {
    pub items: Vec<ChangeView>,
    /// The page after this one in the order asked for; `null` when there is none yet.
    pub next_cursor: Option<String>,
    /// The page before this one; `null` on the first.
    pub prev_cursor: Option<String>,
}

/// One connector run, by whichever process ran it.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct RunView {
    pub id: String,
    pub connector: String,
    pub started_at: DateTime<Utc>,
    pub finished_at: Option<DateTime<Utc>>,
    /// `running`, `succeeded`, `partial`, `failed` or `abandoned`.
    #[schema(example = "succeeded")]
    pub status: String,
    /// Per scope: its status, counts and refused deletions; and the problems met.
    #[schema(value_type = Option<Object>)]
    pub outcome: Option<Value>,
    /// What the run saw (`observations`) and did (`entities`).
    #[schema(value_type = Option<Object>, example = json!({"observations": {"observed": 9, "new": 9, "changed": 0, "unchanged": 0, "rejected": 0, "gone": 0}, "entities": {"created": 9, "updated": 0, "renamed": 0, "deleted": 0, "restored": 0, "unchanged": 0}}))]
    pub counts: Option<Value>,
    pub error: Option<String>,
}

impl From<RunRow> for RunView {
    fn from(r: RunRow) -> Self {
        Self {
            id: r.id,
            connector: r.connector,
            started_at: r.started_at,
            finished_at: r.finished_at,
            status: r.status,
            // The run's report is stored as the engine wrote it (`would_delete`, ...).
            outcome: r.outcome.map(camel_keys),
            counts: r.counts.map(camel_keys),
            error: r.error,
        }
    }
}

/// Recent runs.
#[derive(Debug, Serialize, ToSchema)]
pub struct RunList {
    pub items: Vec<RunView>,
}

/// The configured connectors.
#[derive(Debug, Serialize, ToSchema)]
pub struct ConnectorList {
    pub items: Vec<crate::ConnectorView>,
}

/// A sync was queued.
#[derive(Debug, Serialize, ToSchema)]
pub struct Queued {
    /// The connector's id.
    #[schema(example = "github")]
    pub queued: String,
}

/// What a webhook delivery led to (one of the three).
#[derive(Debug, Default, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct HookAnswer {
    /// How many things it named, queued to be read again.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub queued: Option<usize>,
    /// The same delivery was taken before.
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub duplicate: bool,
    /// Why it changes nothing (another organisation, an event the catalog does not use).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ignored: Option<String>,
}

/// Who said what, when.
#[derive(Debug, Serialize, serde::Deserialize, ToSchema)]
pub struct EvidenceView {
    pub source: String,
    pub said: String,
    pub at: DateTime<Utc>,
}

/// One finding of an audit.
#[derive(Debug, Serialize, ToSchema)]
pub struct FindingView {
    /// The entity's ref as displayed.
    pub entity: String,
    pub kind: String,
    #[schema(example = "owner-unresolved")]
    pub rule: String,
    /// `low`, `medium` or `high`.
    #[schema(example = "high")]
    pub severity: String,
    pub message: String,
    /// The owner ref involved, when there is one.
    pub owner: Option<String>,
    pub evidence: Vec<EvidenceView>,
}

impl From<surveyor_audit::Finding> for FindingView {
    fn from(f: surveyor_audit::Finding) -> Self {
        Self {
            entity: f.entity,
            kind: f.kind,
            rule: f.rule.to_string(),
            severity: f.severity.as_str().to_string(),
            message: f.message,
            owner: f.owner,
            evidence: f
                .evidence
                .into_iter()
                .map(|e| EvidenceView {
                    source: e.source,
                    said: e.said,
                    at: e.at,
                })
                .collect(),
        }
    }
}

/// An audit now.
#[derive(Debug, Serialize, ToSchema)]
pub struct AuditReport {
    /// Per owner ref (`-` for none): findings per severity.
    #[schema(example = json!({"group:default/team-b": {"high": 3}}))]
    pub summary: BTreeMap<String, BTreeMap<String, usize>>,
    pub findings: Vec<FindingView>,
}

impl AuditReport {
    pub fn of(findings: Vec<surveyor_audit::Finding>) -> Self {
        let summary = surveyor_audit::summary(&findings)
            .into_iter()
            .map(|(owner, counts)| {
                let counts = counts.into_iter().map(|(s, n)| (s.to_string(), n));
                (owner, counts.collect())
            })
            .collect();
        Self {
            summary,
            findings: findings.into_iter().map(FindingView::from).collect(),
        }
    }
}

/// A finding as recorded after each sync, resolved ones too.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct RecordedFinding {
    pub id: i64,
    /// `ownership` or `drift`.
    pub audit: String,
    pub rule: String,
    pub entity_ref: String,
    /// The entity's kind as displayed; `null` for findings recorded before kinds were kept.
    #[schema(example = "Component")]
    pub kind: Option<String>,
    pub severity: String,
    pub message: String,
    /// The owner ref involved, when there is one.
    #[schema(example = "group:default/team-a")]
    pub owner: Option<String>,
    /// As last seen; empty for findings recorded before evidence was kept.
    pub evidence: Vec<EvidenceView>,
    pub first_seen: DateTime<Utc>,
    pub last_seen: DateTime<Utc>,
    /// `null` while the finding is open.
    pub resolved_at: Option<DateTime<Utc>>,
}

impl From<FindingRow> for RecordedFinding {
    fn from(f: FindingRow) -> Self {
        Self {
            id: f.id,
            audit: f.audit,
            rule: f.rule,
            entity_ref: f.entity_ref,
            kind: f.kind,
            severity: f.severity,
            message: f.message,
            owner: f.owner,
            // Written by the audits as this shape; anything else reads as no evidence.
            evidence: f
                .evidence
                .as_deref()
                .and_then(|e| serde_json::from_str(e).ok())
                .unwrap_or_default(),
            first_seen: f.first_seen,
            last_seen: f.last_seen,
            resolved_at: f.resolved_at,
        }
    }
}

/// An audit's recorded findings.
#[derive(Debug, Serialize, ToSchema)]
pub struct FindingHistory {
    pub findings: Vec<RecordedFinding>,
}

/// `snake_case` object keys to `camelCase`, at every depth: for documents surveyor wrote
/// itself with Rust's field names (a run's report), never for catalog data.
pub fn camel_keys(v: Value) -> Value {
    match v {
        Value::Object(m) => Value::Object(
            m.into_iter()
                .map(|(k, v)| (camel(&k), camel_keys(v)))
                .collect(),
        ),
        Value::Array(items) => Value::Array(items.into_iter().map(camel_keys).collect()),
        other => other,
    }
}

fn camel(k: &str) -> String {
    let mut out = String::with_capacity(k.len());
    let mut upper = false;
    for c in k.chars() {
        if c == '_' && !out.is_empty() {
            upper = true;
        } else if upper {
            out.extend(c.to_uppercase());
            upper = false;
        } else {
            out.push(c);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn run_reports_get_camel_case_keys_and_keep_their_values() {
        let v = serde_json::json!({"scopes": [{"refused": [{"would_delete": 3, "max_ratio": 0.2}],
            "status": {"status": "partial", "reason": "rate_limited"}}]});
        assert_eq!(
            camel_keys(v),
            serde_json::json!({"scopes": [{"refused": [{"wouldDelete": 3, "maxRatio": 0.2}],
                "status": {"status": "partial", "reason": "rate_limited"}}]})
        );
    }
}
