//! From Jira's shapes to catalog entities: project -> System, category -> Domain, component ->
//! Component part of its System, and project and component leads -> Users, named as `spec.owner`.

use serde_json::{Value, json};
use surveyor_model::Entity;

use crate::api::{Category, Component, JiraUser, Project};
use crate::config::{Flavor, Settings, SystemNames};

/// Backstage's `jira/project-key`, which the Jira plugins read.
pub const PROJECT_KEY: &str = "jira/project-key";
/// Backstage's `jira/component`: the component's name as Jira writes it.
pub const COMPONENT: &str = "jira/component";
/// Our own annotations, for auditors.
const PREFIX: &str = "jira.surveyor.dev";

/// One naming rule for every source, so the same thing named in two tools is one entity.
pub use surveyor_model::names::entity_name;

/// External ids: Jira ids, prefixed by what they identify, since projects, components and
/// categories are numbered independently and may share numbers.
pub fn project_id(p: &Project) -> String {
    format!("project:{}", p.id)
}
pub fn component_id(c: &Component) -> String {
    format!("component:{}", c.id)
}
pub fn category_id(c: &Category) -> String {
    format!("category:{}", c.id)
}

/// The System's name for a project.
pub fn system_name(settings: &Settings, p: &Project) -> String {
    let raw = match settings.system_names {
        SystemNames::Key => &p.key,
        SystemNames::Name => &p.name,
    };
    entity_name(raw).unwrap_or_else(|| format!("jira-project-{}", p.id))
}

pub fn domain_name(c: &Category) -> String {
    entity_name(&c.name).unwrap_or_else(|| format!("jira-category-{}", c.id))
}

pub fn component_name(settings: &Settings, p: &Project, c: &Component) -> String {
    let raw = if settings.prefix_component_names {
        format!("{}-{}", p.key, c.name)
    } else {
        c.name.clone()
    };
    entity_name(&raw).unwrap_or_else(|| format!("jira-component-{}", c.id))
}

/// Who owns what a person leads: the configured mapping (by account id, user key, username or
/// email, in that order), else the person's User (see [`person`]).
pub fn owner_ref(settings: &Settings, lead: &JiraUser) -> Option<String> {
    if let Some(target) = mapped(settings, lead) {
        return Some(target.clone());
    }
    person_name(settings, lead).map(|n| format!("user:{}/{n}", settings.namespace))
}

fn mapped<'s>(settings: &'s Settings, lead: &JiraUser) -> Option<&'s String> {
    [lead.account_id(), lead.key(), lead.username(), lead.email()]
        .into_iter()
        .flatten()
        .find_map(|k| settings.lead_owner_mapping.get(&k.to_lowercase()))
}

/// A person's catalog name: on Data Center the username (what directories name people by);
/// on Cloud, where an account id is not a name, the email's local part when Jira shows the
/// email (unique, and what directories name people by), else the display name; else the Jira
/// id. Two Cloud people with hidden emails and one display name share it: name them apart with
/// `lead_owner_mapping`.
fn person_name(settings: &Settings, lead: &JiraUser) -> Option<String> {
    // Jira shows a deleted account as "Former user" with no id: that is nobody.
    lead.jira_id()?;
    let named = match settings.flavor {
        Flavor::Cloud => lead
            .email()
            .and_then(|e| e.split_once('@').map(|(local, _)| local))
            .filter(|local| !local.is_empty())
            .or_else(|| lead.display_name()),
        Flavor::Datacenter => lead.username().or_else(|| lead.key()),
    };
    named
        .and_then(entity_name)
        .or_else(|| lead.jira_id().and_then(entity_name))
}

/// External id of a person: their Jira id.
pub fn person_id(lead: &JiraUser) -> Option<String> {
    lead.jira_id().map(|id| format!("user:{id}"))
}

/// A lead as a User (unless `lead_owner_mapping` names their owner): named from the display
/// name, the email Jira shows (when the person's privacy settings allow) as the profile email,
/// so identity joins them to the same person from GitHub, GitLab or PagerDuty; the Jira id and
/// whether the account is active as annotations.
pub fn person(settings: &Settings, lead: &JiraUser) -> Option<(String, Entity)> {
    if mapped(settings, lead).is_some() {
        return None;
    }
    let id = person_id(lead)?;
    let name = person_name(settings, lead)?;
    let mut e = Entity::new("User", &settings.namespace, &name);
    let mut profile = serde_json::Map::new();
    if let Some(n) = lead.display_name() {
        profile.insert("displayName".into(), json!(n));
    }
    if let Some(email) = lead.email() {
        profile.insert("email".into(), json!(email));
    }
    e.spec.insert("profile".into(), Value::Object(profile));
    e.spec.insert("memberOf".into(), json!([]));
    let a = &mut e.metadata.annotations;
    if let Some(jira_id) = lead.jira_id() {
        a.insert(format!("{PREFIX}/account-id"), jira_id.to_string());
    }
    if let Some(username) = lead.username().filter(|u| Some(*u) != lead.key()) {
        a.insert(format!("{PREFIX}/username"), username.to_string());
    }
    if let Some(active) = lead.active {
        a.insert(format!("{PREFIX}/active"), active.to_string());
    }
    Some((id, e))
}

/// The lead's identity as annotations: who Jira says it is and whether the account is still
/// active, so an owner who was deactivated is visible without asking Jira.
fn lead_annotations(e: &mut Entity, lead: &JiraUser) {
    let a = &mut e.metadata.annotations;
    let mut put = |k: &str, v: Option<&str>| {
        if let Some(v) = v {
            a.insert(format!("{PREFIX}/{k}"), v.to_string());
        }
    };
    put("lead", lead.jira_id());
    // Data Center's username differs from its user key for accounts made since Jira 8.
    put(
        "lead-username",
        lead.username().filter(|u| Some(*u) != lead.key()),
    );
    put("lead-display-name", lead.display_name());
    put("lead-email", lead.email());
    put(
        "lead-active",
        lead.active.map(|b| if b { "true" } else { "false" }),
    );
}

fn browse_link(settings: &Settings, key: &str) -> Value {
    json!({"url": format!("{}/browse/{key}", settings.base_url), "title": "Jira project"})
}

/// A project category as a Domain.
pub fn domain(settings: &Settings, c: &Category) -> Entity {
    let name = domain_name(c);
    let mut e = Entity::new("Domain", &settings.namespace, &name);
    if !name.eq_ignore_ascii_case(&c.name) {
        e.metadata.title = Some(c.name.clone());
    }
    e.metadata.description = non_empty(c.description.as_deref());
    e.metadata
        .annotations
        .insert(format!("{PREFIX}/category-id"), c.id.clone());
    e
}

/// A project as a System, owned by its lead, part of its category's Domain.
pub fn system(settings: &Settings, p: &Project) -> Entity {
    let name = system_name(settings, p);
    let mut e = Entity::new("System", &settings.namespace, &name);
    e.metadata.title = Some(p.name.clone());
    e.metadata.description = non_empty(p.description.as_deref());
    e.metadata
        .annotations
        .insert(PROJECT_KEY.into(), p.key.clone());
    e.metadata
        .annotations
        .insert(format!("{PREFIX}/project-id"), p.id.clone());
    if let Some(c) = &p.project_category {
        e.metadata
            .annotations
            .insert(format!("{PREFIX}/project-category"), c.name.clone());
        if settings.categories_as_domains {
            e.spec.insert("domain".into(), json!(domain_name(c)));
        }
    }
    e.metadata.links = vec![browse_link(settings, &p.key)];
    if let Some(lead) = &p.lead {
        lead_annotations(&mut e, lead);
        if let Some(owner) = owner_ref(settings, lead) {
            e.spec.insert("owner".into(), json!(owner));
        }
    }
    e
}

/// A component as a Component of its project's System, owned by its lead (or, when it has
/// none and `inherit_project_lead` is on, by the project's lead; `owner-from` says which).
pub fn component(settings: &Settings, p: &Project, c: &Component) -> Entity {
    let name = component_name(settings, p, c);
    let mut e = Entity::new("Component", &settings.namespace, &name);
    if !name.eq_ignore_ascii_case(&c.name) {
        e.metadata.title = Some(c.name.clone());
    }
    e.metadata.description = non_empty(c.description.as_deref());
    let a = &mut e.metadata.annotations;
    a.insert(PROJECT_KEY.into(), p.key.clone());
    a.insert(COMPONENT.into(), c.name.clone());
    a.insert(format!("{PREFIX}/component-id"), c.id.clone());
    e.metadata.links = vec![browse_link(settings, &p.key)];
    let spec = &mut e.spec;
    spec.insert("type".into(), json!(settings.component_type));
    spec.insert(
        "lifecycle".into(),
        json!(if c.archived {
            "deprecated"
        } else {
            settings.lifecycle.as_str()
        }),
    );
    spec.insert("system".into(), json!(system_name(settings, p)));
    // Type and (for a live component) lifecycle come from the configuration, not from Jira.
    let defaulted: &[&str] = if c.archived {
        &["/spec/type"]
    } else {
        &["/spec/type", "/spec/lifecycle"]
    };
    surveyor_model::kit::mark_defaulted(&mut e, defaulted);
    let (lead, from) = match (&c.lead, &p.lead) {
        (Some(l), _) => (Some(l), "component-lead"),
        (None, Some(l)) if settings.inherit_project_lead => (Some(l), "project-lead"),
        _ => (None, ""),
    };
    if let Some(lead) = lead {
        e.metadata
            .annotations
            .insert(format!("{PREFIX}/owner-from"), from.into());
        lead_annotations(&mut e, lead);
        if let Some(owner) = owner_ref(settings, lead) {
            e.spec.insert("owner".into(), json!(owner));
        }
    }
    e
}

fn non_empty(s: Option<&str>) -> Option<String> {
    s.map(str::trim)
        .filter(|s| !s.is_empty())
        .map(str::to_string)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::JiraConfig;

    fn settings(extra: &str) -> Settings {
        let toml = format!(
            "url = \"https://acme.atlassian.net\"\nemail = \"a@acme.example\"\napi_token = \"t\"\n{extra}"
        );
        let config: JiraConfig = toml::from_str(&toml).expect("config");
        config.settings().expect("settings")
    }

    fn dc_settings(extra: &str) -> Settings {
        let toml = format!(
            "url = \"https://jira.corp.example/jira\"\nflavor = \"datacenter\"\ntoken = \"t\"\n{extra}"
        );
        let config: JiraConfig = toml::from_str(&toml).expect("config");
        config.settings().expect("settings")
    }

    fn user(account: &str, active: bool) -> JiraUser {
        JiraUser {
            account_id: Some(account.into()),
            display_name: Some("Kim Lee".into()),
            email_address: Some("kim@acme.example".into()),
            active: Some(active),
            ..JiraUser::default()
        }
    }

    fn project(lead: Option<JiraUser>) -> Project {
        Project {
            id: "10000".into(),
            key: "PAY".into(),
            name: "Payments".into(),
            description: Some("Money in, money out".into()),
            lead,
            project_category: Some(Category {
                id: "10100".into(),
                name: "Commerce Core".into(),
                description: Some("Selling things".into()),
            }),
        }
    }

    fn comp(name: &str, lead: Option<JiraUser>) -> Component {
        Component {
            id: "20001".into(),
            name: name.into(),
            description: Some("  ".into()),
            lead,
            archived: false,
        }
    }

    #[test]
    fn names_follow_backstage_rules_like_repository_names() {
        assert_eq!(
            entity_name("billing-api-3").as_deref(),
            Some("billing-api-3")
        );
        assert_eq!(entity_name("Billing API").as_deref(), Some("billing-api"));
        assert_eq!(
            entity_name("Billing - API (v2)").as_deref(),
            Some("billing-api-v2")
        );
        assert_eq!(entity_name("a--b_c.d").as_deref(), Some("a--b_c.d"));
        assert_eq!(entity_name("  Ünïcode  ").as_deref(), Some("n-code"));
        assert_eq!(
            entity_name("712020:5f0c-ab").as_deref(),
            Some("712020-5f0c-ab")
        );
        assert_eq!(entity_name("日本語"), None);
        assert_eq!(entity_name(&"x".repeat(70)).map(|n| n.len()), Some(63));
        // Past 63 characters a name keeps its start and ends in a hash, as from every source.
        assert!(entity_name(&("a".repeat(62) + "-b")).is_some_and(|n| n.len() == 63));
    }

    #[test]
    fn a_project_is_a_system_owned_by_its_lead_in_its_category_domain() {
        let s = settings("");
        let e = system(&s, &project(Some(user("712020:abc-1", false))));
        assert_eq!(e.entity_ref().unwrap().to_string(), "system:default/pay");
        assert_eq!(e.metadata.title.as_deref(), Some("Payments"));
        // Named as a person is, not by the account id.
        assert_eq!(e.spec_str("owner"), Some("user:default/kim"));
        assert_eq!(e.spec_str("domain"), Some("commerce-core"));
        let a = &e.metadata.annotations;
        assert_eq!(a[PROJECT_KEY], "PAY");
        assert_eq!(a["jira.surveyor.dev/lead"], "712020:abc-1");
        assert_eq!(a["jira.surveyor.dev/lead-active"], "false");
        assert_eq!(a["jira.surveyor.dev/lead-email"], "kim@acme.example");
        assert_eq!(
            e.metadata.links[0]["url"],
            "https://acme.atlassian.net/browse/PAY"
        );
        let rels: Vec<String> = e
            .relations()
            .iter()
            .map(|r| format!("{} {}", r.kind, r.target))
            .collect();
        assert_eq!(
            rels,
            [
                "ownedBy user:default/kim",
                "partOf domain:default/commerce-core"
            ]
        );

        let by_name = system(
            &settings("system_names = \"name\"\ncategories_as_domains = false"),
            &project(None),
        );
        assert_eq!(by_name.metadata.name, "payments");
        assert!(
            by_name.spec.is_empty(),
            "no lead, no domain: {:?}",
            by_name.spec
        );
        assert_eq!(
            by_name.metadata.annotations["jira.surveyor.dev/project-category"],
            "Commerce Core"
        );
    }

    #[test]
    fn a_component_is_part_of_its_system_and_owned_by_the_nearest_lead() {
        let s = settings("");
        let p = project(Some(user("acc-project", true)));
        let own = component(&s, &p, &comp("billing-api-3", Some(user("acc-comp", true))));
        assert_eq!(
            own.entity_ref().unwrap().to_string(),
            "component:default/billing-api-3"
        );
        assert_eq!(own.metadata.title, None);
        assert_eq!(
            own.metadata.description, None,
            "blank descriptions are none"
        );
        assert_eq!(own.spec_str("system"), Some("pay"));
        assert_eq!(own.spec_str("type"), Some("service"));
        assert_eq!(own.spec_str("lifecycle"), Some("production"));
        assert_eq!(own.spec_str("owner"), Some("user:default/kim"));
        let a = &own.metadata.annotations;
        assert_eq!(
            (a[PROJECT_KEY].as_str(), a[COMPONENT].as_str()),
            ("PAY", "billing-api-3")
        );
        assert_eq!(a["jira.surveyor.dev/owner-from"], "component-lead");

        let inherited = component(&s, &p, &comp("Ledger Sync", None));
        assert_eq!(inherited.metadata.name, "ledger-sync");
        assert_eq!(inherited.metadata.title.as_deref(), Some("Ledger Sync"));
        assert_eq!(inherited.spec_str("owner"), Some("user:default/kim"));
        assert_eq!(
            inherited.metadata.annotations["jira.surveyor.dev/owner-from"],
            "project-lead"
        );

        let s = settings(
            "inherit_project_lead = false\nprefix_component_names = true\ncomponent_type = \"library\"",
        );
        let mut archived = comp("Ledger Sync", None);
        archived.archived = true;
        let alone = component(&s, &p, &archived);
        assert_eq!(alone.metadata.name, "pay-ledger-sync");
        assert_eq!(alone.spec.get("owner"), None);
        assert_eq!(alone.spec_str("lifecycle"), Some("deprecated"));
        assert_eq!(alone.spec_str("type"), Some("library"));
        assert!(
            !alone
                .metadata
                .annotations
                .contains_key("jira.surveyor.dev/lead")
        );
    }

    #[test]
    fn the_mapping_names_owners_by_any_identity() {
        let s = settings(
            "lead_owner_mapping = { \"acc-1\" = \"payments\", \"KIM@acme.example\" = \"group:default/billing\" }",
        );
        assert_eq!(
            owner_ref(&s, &user("ACC-1", true)).as_deref(),
            Some("group:default/payments")
        );
        assert_eq!(
            owner_ref(&s, &user("acc-2", true)).as_deref(),
            Some("group:default/billing")
        );
        let anonymous = JiraUser {
            display_name: Some("Former user".into()),
            ..JiraUser::default()
        };
        assert_eq!(owner_ref(&s, &anonymous), None);
    }

    #[test]
    fn a_lead_is_a_user_named_from_the_display_name_with_the_email_jira_shows() {
        let s = settings("lead_owner_mapping = { \"acc-mapped\" = \"group:default/ops\" }");
        let (id, u) = person(&s, &user("712020:abc-1", false)).expect("a person");
        assert_eq!(id, "user:712020:abc-1");
        assert_eq!(u.entity_ref().unwrap().to_string(), "user:default/kim");
        assert_eq!(u.spec["profile"]["email"], "kim@acme.example");
        assert_eq!(u.spec["profile"]["displayName"], "Kim Lee");
        let a = &u.metadata.annotations;
        assert_eq!(a["jira.surveyor.dev/account-id"], "712020:abc-1");
        assert_eq!(a["jira.surveyor.dev/active"], "false");
        // The owner ref names that same User.
        assert_eq!(
            owner_ref(&s, &user("712020:abc-1", false)).as_deref(),
            Some("user:default/kim")
        );
        // With the email hidden, the display name names them.
        let hidden = JiraUser {
            email_address: None,
            ..user("712020:abc-2", true)
        };
        assert_eq!(
            owner_ref(&s, &hidden).as_deref(),
            Some("user:default/kim-lee")
        );
        // A mapped lead is the mapping's owner: no User is made for them.
        assert!(person(&s, &user("acc-mapped", true)).is_none());
        // "Former user" (a deleted account, no id) is nobody.
        let former = JiraUser {
            display_name: Some("Former user".into()),
            ..JiraUser::default()
        };
        assert!(person(&s, &former).is_none());
    }

    #[test]
    fn data_center_leads_are_users_named_by_username() {
        let s = dc_settings("lead_owner_mapping = { \"JIRAUSER10001\" = \"group:default/ops\" }");
        let lead = JiraUser {
            key: Some("JIRAUSER10002".into()),
            name: Some("ada.lovelace".into()),
            active: Some(true),
            ..JiraUser::default()
        };
        assert_eq!(
            owner_ref(&s, &lead).as_deref(),
            Some("user:default/ada.lovelace")
        );
        let legacy = JiraUser {
            key: Some("grace".into()),
            name: Some("grace".into()),
            ..JiraUser::default()
        };
        assert_eq!(
            owner_ref(&s, &legacy).as_deref(),
            Some("user:default/grace")
        );
        let mapped = JiraUser {
            key: Some("JIRAUSER10001".into()),
            name: Some("bob".into()),
            ..JiraUser::default()
        };
        assert_eq!(owner_ref(&s, &mapped).as_deref(), Some("group:default/ops"));
        let e = system(&s, &project(Some(lead)));
        assert_eq!(
            e.metadata.annotations["jira.surveyor.dev/lead"],
            "JIRAUSER10002"
        );
        assert_eq!(
            e.metadata.annotations["jira.surveyor.dev/lead-username"],
            "ada.lovelace"
        );
        assert!(
            !e.metadata
                .annotations
                .contains_key("jira.surveyor.dev/lead-email")
        );
        assert_eq!(
            e.metadata.links[0]["url"],
            "https://jira.corp.example/jira/browse/PAY"
        );
    }

    #[test]
    fn unnameable_things_fall_back_to_their_ids() {
        let s = settings("");
        let mut p = project(None);
        p.name = "日本".into();
        p.project_category = Some(Category {
            id: "7".into(),
            name: "—".into(),
            description: None,
        });
        let e = component(&s, &p, &comp("—", None));
        assert_eq!(e.metadata.name, "jira-component-20001");
        assert_eq!(
            system(&settings("system_names = \"name\""), &p)
                .metadata
                .name,
            "jira-project-10000"
        );
        let c = p.project_category.as_ref().unwrap();
        assert_eq!(domain(&s, c).metadata.name, "jira-category-7");
    }

    #[test]
    fn a_category_is_a_domain() {
        let c = Category {
            id: "10100".into(),
            name: "Commerce Core".into(),
            description: Some("Selling things".into()),
        };
        let e = domain(&settings(""), &c);
        assert_eq!(
            e.entity_ref().unwrap().to_string(),
            "domain:default/commerce-core"
        );
        assert_eq!(e.metadata.title.as_deref(), Some("Commerce Core"));
        assert_eq!(e.metadata.description.as_deref(), Some("Selling things"));
        assert_eq!(
            e.metadata.annotations["jira.surveyor.dev/category-id"],
            "10100"
        );
    }
}
