//! What classification is configured with (`[classify]` in `surveyor.toml`): which clusters and
//! namespaces are production, and the ordered rules that give a Component its tier from evidence.

/// The annotation that declares a tier (`surveyor.dev/tier: tier-1`); a declared tier wins.
pub const TIER_ANNOTATION: &str = "surveyor.dev/tier";

/// The facets classification records, in the order they are shown.
pub const FACETS: [&str; 6] = ["tier", "stack", "runtime", "lifecycle", "domain", "system"];

/// One tier rule: the tier a Component gets when every condition that is set holds. Rules are
/// tried in order; the first that holds gives the tier.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct TierRule {
    pub tier: String,
    /// Covered by on-call now (`spec.onCall.covered`, from PagerDuty), or not.
    pub on_call: Option<bool>,
    /// PagerDuty's incident urgency for the service (`high`, `low`, `severity_based`,
    /// `support-hours`).
    pub urgency: Option<String>,
    /// At least this many levels in the service's escalation policy.
    pub min_escalation_levels: Option<u64>,
    /// Runs in a production cluster or namespace, or not.
    pub production: Option<bool>,
    /// At least this many replicas in one production workload.
    pub min_replicas: Option<u64>,
    /// At least this many catalog entities depend on it.
    pub min_dependents: Option<u64>,
}

impl TierRule {
    /// The conditions as `key = value` text, for evidence and `--help` (`urgency = "high"`).
    pub fn conditions(&self) -> Vec<String> {
        let mut out = Vec::new();
        if let Some(v) = self.on_call {
            out.push(format!("on_call = {v}"));
        }
        if let Some(v) = &self.urgency {
            out.push(format!("urgency = {v:?}"));
        }
        if let Some(v) = self.min_escalation_levels {
            out.push(format!("min_escalation_levels = {v}"));
        }
        if let Some(v) = self.production {
            out.push(format!("production = {v}"));
        }
        if let Some(v) = self.min_replicas {
            out.push(format!("min_replicas = {v}"));
        }
        if let Some(v) = self.min_dependents {
            out.push(format!("min_dependents = {v}"));
        }
        out
    }
}

/// `[classify]`: production names, tier rules and the tier when none holds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClassifyRules {
    /// Cluster or namespace names (compared ignoring case) that mean production.
    pub production: Vec<String>,
    /// Tried in order; a configured list replaces the default one whole.
    pub tiers: Vec<TierRule>,
    /// The tier of a Component no rule gives one.
    pub default_tier: String,
}

impl Default for ClassifyRules {
    fn default() -> Self {
        let rule = |tier: &str| TierRule {
            tier: tier.into(),
            ..TierRule::default()
        };
        Self {
            production: ["prod", "production", "prd", "live"]
                .map(String::from)
                .to_vec(),
            tiers: vec![
                TierRule {
                    urgency: Some("high".into()),
                    on_call: Some(true),
                    ..rule("tier-1")
                },
                TierRule {
                    min_dependents: Some(10),
                    ..rule("tier-1")
                },
                TierRule {
                    on_call: Some(true),
                    ..rule("tier-2")
                },
                TierRule {
                    production: Some(true),
                    ..rule("tier-2")
                },
                TierRule {
                    min_dependents: Some(3),
                    ..rule("tier-2")
                },
            ],
            default_tier: "tier-3".into(),
        }
    }
}
