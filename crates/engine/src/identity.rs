//! `[[identity]]` rules: how names from different sources that mean one thing become one entity
//! ref — separators made equal, suffixes like `-service` stripped, explicit aliases. Rules are
//! applied to every observation before it is merged, and to the refs its spec holds, so the
//! result does not depend on which source synced first. Never fuzzy: only what a rule says.

use std::collections::BTreeMap;

use serde_json::Value;
use surveyor_model::{Entity, EntityRef};

/// One `[[identity]]` table.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct IdentityRule {
    /// Lower-cased kinds the rule applies to; empty means every kind.
    pub kinds: Vec<String>,
    /// `_` and `.` count as `-` (`payments_api` is `payments-api`).
    pub separators: bool,
    /// Lower-cased suffixes removed from a name (the first that matches), e.g. `-service`.
    pub strip_suffixes: Vec<String>,
    /// Lower-cased alias -> canonical name.
    pub aliases: BTreeMap<String, String>,
}

/// All rules, in order.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Identity {
    pub rules: Vec<IdentityRule>,
}

/// The annotation that keeps a renamed observation's own name.
pub const SOURCE_NAME: &str = "surveyor.dev/source-name";

/// Spec fields that hold refs, with the kind a bare name in them means.
const REF_FIELDS: &[(&str, &str)] = &[
    ("owner", "group"),
    ("system", "system"),
    ("domain", "domain"),
    ("subdomainOf", "domain"),
    ("subcomponentOf", "component"),
    ("dependsOn", "component"),
    ("dependencyOf", "component"),
    ("providesApis", "api"),
    ("consumesApis", "api"),
    ("parent", "group"),
    ("children", "group"),
    ("members", "user"),
    ("memberOf", "group"),
];

impl Identity {
    pub fn is_empty(&self) -> bool {
        self.rules.is_empty()
    }

    /// The canonical name of `name` for `kind`, when a rule changes it (beyond letter case).
    pub fn canonical(&self, kind: &str, name: &str) -> Option<String> {
        let kind = kind.to_ascii_lowercase();
        let mut current = name.to_ascii_lowercase();
        for rule in &self.rules {
            if !rule.kinds.is_empty() && !rule.kinds.contains(&kind) {
                continue;
            }
            if rule.separators {
                current = current.replace(['_', '.'], "-");
            }
            if let Some(stripped) = rule.strip_suffixes.iter().find_map(|s| {
                current
                    .strip_suffix(s.as_str())
                    .filter(|rest| !rest.is_empty())
                    .map(str::to_string)
            }) {
                current = stripped;
            }
            if let Some(canonical) = rule.aliases.get(&current) {
                current.clone_from(canonical);
            }
        }
        (!current.eq_ignore_ascii_case(name)).then_some(current)
    }

    /// Renames `entity` and rewrites the refs in its spec by the rules. The name it had is kept
    /// in the `surveyor.dev/source-name` annotation.
    pub fn apply(&self, entity: &mut Entity) {
        if self.rules.is_empty() {
            return;
        }
        if let Some(name) = self.canonical(&entity.kind, &entity.metadata.name) {
            let original = std::mem::replace(&mut entity.metadata.name, name);
            entity
                .metadata
                .annotations
                .insert(SOURCE_NAME.to_string(), original);
        }
        let namespace = entity.namespace().to_string();
        for (field, default_kind) in REF_FIELDS {
            let Some(value) = entity.spec.get_mut(*field) else {
                continue;
            };
            let rewrite = |v: &mut Value| {
                let Some(text) = v.as_str() else { return };
                let Ok(r) = EntityRef::parse_with(text, Some(default_kind), &namespace) else {
                    return;
                };
                if let Some(name) = self.canonical(r.kind(), r.name())
                    && let Ok(canonical) = EntityRef::new(r.kind(), r.namespace(), &name)
                {
                    *v = Value::String(canonical.to_string());
                }
            };
            match value {
                Value::Array(items) => items.iter_mut().for_each(rewrite),
                other => rewrite(other),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rules() -> Identity {
        Identity {
            rules: vec![IdentityRule {
                kinds: vec!["component".into()],
                separators: true,
                strip_suffixes: vec!["-service".into(), "-api".into()],
                aliases: [("pay".to_string(), "payments".to_string())].into(),
            }],
        }
    }

    #[test]
    fn names_meet_by_rule_only() {
        let id = rules();
        assert_eq!(
            id.canonical("Component", "payments-api").as_deref(),
            Some("payments")
        );
        assert_eq!(
            id.canonical("component", "Payments_Service").as_deref(),
            Some("payments")
        );
        assert_eq!(
            id.canonical("component", "pay").as_deref(),
            Some("payments")
        );
        assert_eq!(
            id.canonical("component", "payments"),
            None,
            "already canonical"
        );
        assert_eq!(
            id.canonical("component", "Payments"),
            None,
            "case is no change"
        );
        assert_eq!(
            id.canonical("component", "-api"),
            None,
            "a suffix is not a whole name"
        );
        assert_eq!(
            id.canonical("group", "payments-api"),
            None,
            "other kinds untouched"
        );
        assert_eq!(
            id.canonical("component", "paymnts-api").as_deref(),
            Some("paymnts"),
            "no fuzzy"
        );
    }

    #[test]
    fn an_entity_and_the_refs_it_holds_are_renamed() {
        let mut e = Entity::new("Component", "default", "checkout-service");
        e.spec
            .insert("owner".into(), Value::String("team-a".into()));
        e.spec.insert(
            "dependsOn".into(),
            serde_json::json!(["component:payments-api", "resource:db-api"]),
        );
        rules().apply(&mut e);
        assert_eq!(e.metadata.name, "checkout");
        assert_eq!(e.metadata.annotations[SOURCE_NAME], "checkout-service");
        assert_eq!(
            e.spec["dependsOn"],
            serde_json::json!(["component:default/payments", "resource:db-api"])
        );
        assert_eq!(e.spec["owner"], "team-a");
    }
}
