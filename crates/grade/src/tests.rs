use serde_json::json;

use super::*;

fn claims(v: Value) -> Vec<Claim> {
    serde_json::from_value(v).expect("claims")
}

fn values(out: &[(String, Vec<Evidence>)]) -> Vec<&str> {
    out.iter().map(|(v, _)| v.as_str()).collect()
}

#[test]
fn stacks_come_from_the_language_and_the_manifests_frameworks() {
    let body = json!({
        "metadata": {"tags": ["billing", "typescript"]},
        "spec": {"packageDependencies": [
            {"ecosystem": "npm", "file": "package.json", "package": "react", "requirement": "^18", "scope": "runtime"},
            {"ecosystem": "npm", "file": "package.json", "package": "express", "requirement": "^4", "scope": "runtime"},
            {"ecosystem": "npm", "file": "package.json", "package": "vue", "requirement": "^3", "scope": "dev"},
            {"ecosystem": "maven", "file": "pom.xml", "package": "org.springframework.boot:spring-boot-starter-web", "requirement": "3.3.0", "scope": "runtime"}
        ]}
    });
    let c = claims(json!([{"source": "github", "winner": true}]));
    let out = stack::stacks(&body, &c);
    // A dev dependency is no framework; Maven without a language tag is Java.
    assert_eq!(
        values(&out),
        ["java/spring-boot", "typescript/express", "typescript/react"]
    );
    let react = &out[2].1;
    assert!(react.contains(&Evidence::new("github", "language typescript")));
    assert!(react.contains(&Evidence::new(
        "github",
        "package.json depends on react ^18"
    )));
}

#[test]
fn a_language_without_frameworks_is_the_stack_and_npm_without_typescript_is_javascript() {
    let body = json!({"metadata": {"tags": ["rust"]}, "spec": {"packageDependencies": [
        {"ecosystem": "cargo", "file": "Cargo.toml", "package": "tracing", "scope": "runtime"},
        {"ecosystem": "npm", "file": "web/package.json", "package": "left-pad", "scope": "runtime"}
    ]}});
    assert_eq!(values(&stack::stacks(&body, &[])), ["javascript", "rust"]);
    let typed = json!({"metadata": {}, "spec": {"packageDependencies": [
        {"ecosystem": "npm", "file": "package.json", "package": "typescript", "scope": "dev"}
    ]}});
    assert_eq!(values(&stack::stacks(&typed, &[])), ["typescript"]);
    assert!(stack::stacks(&json!({"metadata": {"tags": ["payments"]}}), &[]).is_empty());
}

#[test]
fn runtimes_are_named_by_known_base_images_only() {
    let title = "Deployment shop/api (prod)".to_string();
    let source = "k8s".to_string();
    let images = vec![
        "node:20-alpine".to_string(),
        "ghcr.io/acme/api:1.2".to_string(),
        "mcr.microsoft.com/dotnet/aspnet:8.0".to_string(),
        "registry:5000/team/python@sha256:abc".to_string(),
        "ghcr.io/acme/runtime:3".to_string(),
    ];
    let out = stack::runtimes([(&title, &images, &source)].into_iter());
    assert_eq!(values(&out), ["dotnet", "node", "python"]);
    assert_eq!(
        out[1].1,
        [Evidence::new(
            "k8s",
            "Deployment shop/api (prod) runs node:20-alpine"
        )]
    );
}

fn signals() -> Signals {
    Signals {
        on_call: Some(true),
        urgency: Some("high".into()),
        levels: Some(2),
        production: vec![("k8s".into(), "Deployment a (prod)".into(), Some(3))],
        dependents: 4,
        on_call_by: "pagerduty".into(),
    }
}

#[test]
fn a_tier_rule_holds_only_when_every_condition_it_sets_holds() {
    let s = signals();
    let rule = TierRule {
        tier: "tier-1".into(),
        urgency: Some("HIGH".into()),
        min_replicas: Some(3),
        ..TierRule::default()
    };
    let why = s.check(&rule).expect("holds");
    assert_eq!(
        why,
        [
            Evidence::new("pagerduty", "incident urgency HIGH"),
            Evidence::new("k8s", "3 replicas in production: Deployment a (prod)"),
        ]
    );
    for failing in [
        TierRule {
            min_replicas: Some(4),
            ..rule.clone()
        },
        TierRule {
            min_dependents: Some(5),
            ..rule.clone()
        },
        TierRule {
            on_call: Some(false),
            ..rule.clone()
        },
        TierRule {
            min_escalation_levels: Some(3),
            ..rule.clone()
        },
        TierRule {
            urgency: Some("low".into()),
            ..rule.clone()
        },
    ] {
        assert!(s.check(&failing).is_none(), "{failing:?}");
    }
    let none = Signals {
        production: Vec::new(),
        ..signals()
    };
    assert!(
        none.check(&TierRule {
            production: Some(true),
            ..TierRule::default()
        })
        .is_none()
    );
}

#[test]
fn a_declared_tier_wins_and_otherwise_the_first_rule_that_holds() {
    let rules = ClassifyRules::default();
    let cat = Catalog::default();
    let pd = claims(
        json!([{"source": "pagerduty", "fields": ["/spec/onCall/covered"]},
                           {"source": "descriptors", "declared": true,
                            "fields": ["/metadata/annotations/surveyor.dev~1tier"]}]),
    );
    let declared = json!({"metadata": {"annotations": {"surveyor.dev/tier": "Tier-0"}},
                          "spec": {"onCall": {"covered": true, "urgency": "high"}}});
    let (tier, is_declared, why) = tier(&cat, &rules, "component:default/a", &declared, &pd, &[]);
    assert_eq!((tier.as_str(), is_declared), ("tier-0", true));
    assert_eq!(why[0].source, "descriptors");

    let paged = json!({"metadata": {}, "spec": {"onCall": {"covered": true, "urgency": "high"}}});
    let (t, d, why) = super::tier(&cat, &rules, "component:default/a", &paged, &pd, &[]);
    assert_eq!((t.as_str(), d), ("tier-1", false));
    assert!(
        why.iter().any(|e| e.said.starts_with("tier rule 1 (")),
        "{why:?}"
    );

    let covered = json!({"metadata": {}, "spec": {"onCall": {"covered": true, "urgency": "low"}}});
    let (t, _, _) = super::tier(&cat, &rules, "component:default/a", &covered, &pd, &[]);
    assert_eq!(t, "tier-2");

    let mut depended = Catalog::default();
    depended.dependents.insert("component:default/a".into(), 12);
    let (t, _, why) = super::tier(
        &depended,
        &rules,
        "component:default/a",
        &json!({}),
        &[],
        &[],
    );
    assert_eq!(t, "tier-1");
    assert!(why.contains(&Evidence::new("catalog", "12 entities depend on it")));

    let (t, _, why) = super::tier(&cat, &rules, "component:default/a", &json!({}), &[], &[]);
    assert_eq!(t, "tier-3");
    assert_eq!(why, [Evidence::new("surveyor", "no tier rule holds")]);
}

#[test]
fn any_source_saying_deprecated_makes_it_deprecated_unless_a_descriptor_declares() {
    let body = json!({"spec": {"lifecycle": "production"}});
    let c = claims(json!([
        {"source": "pagerduty", "winner": true, "fields": ["/spec/lifecycle"]},
        {"source": "github", "disagrees": {"/spec/lifecycle": "deprecated"}}
    ]));
    let (v, d, why) = lifecycle(&body, &c).expect("a lifecycle");
    assert_eq!((v.as_str(), d), ("deprecated", false));
    assert_eq!(
        why,
        [
            Evidence::new("pagerduty", "spec.lifecycle: production"),
            Evidence::new("github", "spec.lifecycle: deprecated"),
        ]
    );
    let declared = claims(json!([
        {"source": "files", "declared": true, "fields": ["/spec/lifecycle"]},
        {"source": "github", "disagrees": {"/spec/lifecycle": "deprecated"}}
    ]));
    assert_eq!(
        lifecycle(&body, &declared).map(|(v, d, _)| (v, d)),
        Some(("production".into(), true))
    );
    assert!(lifecycle(&json!({"spec": {}}), &c).is_none());
}

#[test]
fn the_domain_is_the_systems_else_the_gitlab_area() {
    let mut cat = Catalog::default();
    cat.system_domains.insert(
        "system:default/billing".into(),
        ("domain:default/commerce".into(), "jira".into()),
    );
    let body = json!({"metadata": {"annotations": {"gitlab.com/project-slug": "acme/payments/billing/api"}}});
    let (v, _, why) = domain(&cat, Some("system:default/billing"), &body, &[]).expect("domain");
    assert_eq!(v, "commerce");
    assert_eq!(
        why[1],
        Evidence::new(
            "jira",
            "system:default/billing is in domain:default/commerce"
        )
    );
    let (v, _, _) = domain(&cat, None, &body, &[]).expect("gitlab");
    assert_eq!(v, "payments");
    let shallow = json!({"metadata": {"annotations": {"gitlab.com/project-slug": "acme/api"}}});
    assert!(domain(&cat, None, &shallow, &[]).is_none());
}

#[test]
fn the_system_is_declared_else_the_one_namespace_of_the_workloads() {
    let w = |ns: &str| Workload {
        source: "k8s".into(),
        title: format!("Deployment {ns}/a"),
        namespace: ns.into(),
        ..Workload::default()
    };
    let (a, b) = (w("shop"), w("shop"));
    let (v, d, _) = system_of(None, &[], &json!({}), &[&a, &b]).expect("namespace");
    assert_eq!((v.as_str(), d), ("shop", false));
    let other = w("ops");
    assert!(system_of(None, &[], &json!({}), &[&a, &other]).is_none());
    let c = claims(json!([{"source": "files", "declared": true, "fields": ["/spec/system"]}]));
    let body = json!({"spec": {"system": "billing"}});
    let (v, d, _) = system_of(Some("system:default/billing"), &c, &body, &[&a]).expect("declared");
    assert_eq!((v.as_str(), d), ("billing", true));
}
