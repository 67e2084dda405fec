//! Identity: when observations from different sources are one entity. By name, through
//! `[[identity]]` rules (separators, suffixes, aliases) and `[[groups]]` mappings applied to every
//! observation and the refs its spec holds; and by key — an identity annotation or a verified
//! email shared with a higher-precedence observation (see [`identity_keys`]). Never fuzzy.

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

/// The other name a declared component gives itself for workloads (`backstage.io/kubernetes-id`),
/// as a ref key, when it differs from its own.
pub fn alias_of(entity: &Entity) -> Option<String> {
    if !entity.kind.eq_ignore_ascii_case("component") {
        return None;
    }
    let id = entity.metadata.annotations.get(KUBERNETES_ID)?;
    let name = surveyor_model::names::entity_name(id)?;
    let alias = EntityRef::new("component", entity.namespace(), &name).ok()?;
    (!name.eq_ignore_ascii_case(&entity.metadata.name)).then(|| alias.key())
}

/// All rules, in order, and the group mappings per source.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Identity {
    pub rules: Vec<IdentityRule>,
    /// Source id -> (lower-cased entity name that source gives a group -> the catalog's name),
    /// from `[[groups]]`.
    pub groups: BTreeMap<String, BTreeMap<String, String>>,
}

/// Annotations that say which thing an entity of a kind is, whatever it is called: one
/// repository, one PagerDuty service, one Jira project. Observations of that kind carrying the
/// same value are one entity. (A Jira component also carries its project's key, and a
/// workload the id of its component: there they point at something else, so they are not
/// identity.)
pub const IDENTITY_ANNOTATIONS: &[(&str, &str)] = &[
    ("component", "github.com/project-slug"),
    ("component", "gitlab.com/project-slug"),
    ("component", "pagerduty.com/service-id"),
    ("system", "jira/project-key"),
];

/// The annotation by which workloads name their component: on a declared component it is
/// another name for that component.
pub const KUBERNETES_ID: &str = "backstage.io/kubernetes-id";

/// The identity keys of an entity: `kind|annotation|value` for each identity annotation of its
/// kind and, for a user, `user|email|address` for its profile email (GitHub, GitLab, PagerDuty
/// and Jira only publish addresses their owners verified). Lower-cased, sorted.
pub fn identity_keys(entity: &Entity) -> Vec<String> {
    let kind = entity.kind.to_ascii_lowercase();
    let mut keys: Vec<String> = IDENTITY_ANNOTATIONS
        .iter()
        .filter(|(k, _)| *k == kind)
        .filter_map(|(_, a)| {
            let value = entity.metadata.annotations.get(*a)?.trim();
            (!value.is_empty()).then(|| format!("{kind}|{a}|{}", value.to_lowercase()))
        })
        .collect();
    if kind == "user"
        && let Some(email) = entity
            .spec
            .get("profile")
            .and_then(|p| p.get("email"))
            .and_then(Value::as_str)
            .map(str::trim)
            .filter(|e| e.contains('@'))
    {
        keys.push(format!("user|email|{}", email.to_lowercase()));
    }
    keys.sort();
    keys.dedup();
    keys
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
        self.rules.is_empty() && self.groups.is_empty()
    }

    /// The canonical name of `name` for `kind` as `source` gives it, when a rule or a group
    /// mapping changes it (beyond letter case).
    pub fn canonical_from(&self, source: &str, kind: &str, name: &str) -> Option<String> {
        if kind.eq_ignore_ascii_case("group")
            && let Some(name) = self
                .groups
                .get(source)
                .and_then(|m| m.get(&name.to_ascii_lowercase()))
        {
            return Some(name.clone());
        }
        self.canonical(kind, name)
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

    /// Renames `entity`, observed by `source`, and rewrites the refs in its spec by the rules
    /// and group mappings. The name it had is kept in the `surveyor.dev/source-name` annotation.
    pub fn apply(&self, source: &str, entity: &mut Entity) {
        if self.rules.is_empty() && !self.groups.contains_key(source) {
            return;
        }
        if let Some(name) = self.canonical_from(source, &entity.kind, &entity.metadata.name) {
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
                if let Some(name) = self.canonical_from(source, r.kind(), r.name())
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
            groups: [(
                "pagerduty".to_string(),
                [("payments-team".to_string(), "payments".to_string())].into(),
            )]
            .into(),
        }
    }

    #[test]
    fn names_meet_by_rule_only() {
        let id = rules();
        // (kind, name, the canonical name if it is another, why)
        let cases: &[(&str, &str, Option<&str>, &str)] = &[
            ("Component", "payments-api", Some("payments"), ""),
            ("component", "Payments_Service", Some("payments"), ""),
            ("component", "pay", Some("payments"), ""),
            ("component", "payments", None, "already canonical"),
            ("component", "Payments", None, "case is no change"),
            ("component", "-api", None, "a suffix is not a whole name"),
            ("group", "payments-api", None, "other kinds untouched"),
            ("component", "paymnts-api", Some("paymnts"), "no fuzzy"),
        ];
        for (kind, name, canonical, why) in cases {
            assert_eq!(
                id.canonical(kind, name).as_deref(),
                *canonical,
                "{kind} {name}: {why}"
            );
        }
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
        rules().apply("github", &mut e);
        assert_eq!(e.metadata.name, "checkout");
        assert_eq!(e.metadata.annotations[SOURCE_NAME], "checkout-service");
        assert_eq!(
            e.spec["dependsOn"],
            serde_json::json!(["component:default/payments", "resource:db-api"])
        );
        assert_eq!(e.spec["owner"], "team-a");
    }

    #[test]
    fn group_mappings_rename_only_that_sources_groups() {
        let id = rules();
        let mut team = Entity::new("Group", "default", "payments-team");
        id.apply("pagerduty", &mut team);
        assert_eq!(team.metadata.name, "payments");
        let mut other = Entity::new("Group", "default", "payments-team");
        id.apply("github", &mut other);
        assert_eq!(
            other.metadata.name, "payments-team",
            "github has no mapping"
        );
        let mut svc = Entity::new("Component", "default", "billing");
        svc.spec
            .insert("owner".into(), Value::String("group:payments-team".into()));
        id.apply("pagerduty", &mut svc);
        assert_eq!(svc.spec["owner"], "group:default/payments");
    }

    #[test]
    fn identity_keys_come_from_annotations_and_emails() {
        let mut e = Entity::new("Component", "default", "svc");
        for (key, value) in [
            ("pagerduty.com/service-id", " PABC1 "),
            ("github.com/project-slug", "Acme/Svc"),
            ("backstage.io/techdocs-ref", "dir:."),
            ("jira/project-key", "PAY"),
        ] {
            e.metadata.annotations.insert(key.into(), value.into());
        }
        assert_eq!(
            identity_keys(&e),
            vec![
                "component|github.com/project-slug|acme/svc".to_string(),
                "component|pagerduty.com/service-id|pabc1".to_string()
            ]
        );
        let mut u = Entity::new("User", "default", "ada");
        u.spec.insert(
            "profile".into(),
            serde_json::json!({"email": "Ada@Acme.example"}),
        );
        assert_eq!(identity_keys(&u), vec!["user|email|ada@acme.example"]);
        u.spec
            .insert("profile".into(), serde_json::json!({"email": "nobody"}));
        assert!(identity_keys(&u).is_empty(), "not an address");
        let mut workload = Entity::new("Resource", "default", "api.pay.prod");
        workload
            .metadata
            .annotations
            .insert(KUBERNETES_ID.into(), "payments".into());
        assert!(identity_keys(&workload).is_empty(), "a link, not identity");
        assert_eq!(alias_of(&workload), None);
        let mut declared = Entity::new("Component", "default", "payments");
        declared
            .metadata
            .annotations
            .insert(KUBERNETES_ID.into(), "Payments_API".into());
        assert_eq!(
            alias_of(&declared).as_deref(),
            Some("component:default/payments_api"),
            "named as the kubernetes connector names the component"
        );
    }
}
