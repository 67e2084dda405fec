//! From PagerDuty's objects to catalog entities: users -> User (email is the cross-source key),
//! teams -> Group, services -> Component with their on-call coverage and owner (the service's
//! team, else its escalation policy's team).

use std::collections::{BTreeMap, BTreeSet};

use serde_json::{Map, Value, json};
use surveyor_model::Entity;

use crate::config::Settings;

/// One naming rule for every source, so the same thing named in two tools is one entity.
pub use surveyor_model::names::entity_name;

/// The entity names of those of `ids` that have one.
fn named<'s, 'a: 's>(
    ids: impl Iterator<Item = &'s &'a str>,
    names: &BTreeMap<&str, String>,
) -> Vec<String> {
    ids.filter_map(|id| names.get(*id).cloned()).collect()
}

fn str_of<'a>(v: &'a Value, key: &str) -> Option<&'a str> {
    v[key].as_str().filter(|s| !s.is_empty())
}

/// What the crawl read, indexed for the mapping.
pub struct Index<'a> {
    settings: &'a Settings,
    users: Vec<&'a Value>,
    teams: Vec<&'a Value>,
    /// PagerDuty user id -> entity name.
    user_names: BTreeMap<&'a str, String>,
    /// PagerDuty team id -> entity name.
    team_names: BTreeMap<&'a str, String>,
    /// Team id -> member user ids.
    members: BTreeMap<&'a str, Vec<&'a str>>,
    /// User id -> team ids.
    teams_of: BTreeMap<&'a str, BTreeSet<&'a str>>,
    /// Escalation policy id -> the policy.
    policies: BTreeMap<&'a str, &'a Value>,
    /// Escalation policy id -> (level, user id) of who is on call now.
    on_call: BTreeMap<&'a str, Vec<(u64, &'a str)>>,
}

impl<'a> Index<'a> {
    pub fn new(
        settings: &'a Settings,
        users: &'a [Value],
        teams: &'a [Value],
        members: &'a BTreeMap<String, Vec<Value>>,
        policies: &'a [Value],
        oncalls: &'a [Value],
    ) -> Self {
        let user_names = users
            .iter()
            .filter_map(|u| {
                let id = str_of(u, "id")?;
                let local = str_of(u, "email").and_then(|e| e.split('@').next());
                let name = local
                    .and_then(entity_name)
                    .or_else(|| str_of(u, "name").and_then(entity_name))?;
                Some((id, name))
            })
            .collect();
        let team_names = teams
            .iter()
            .filter_map(|t| Some((str_of(t, "id")?, entity_name(str_of(t, "name")?)?)))
            .collect();
        let mut member_ids: BTreeMap<&str, Vec<&str>> = BTreeMap::new();
        let mut teams_of: BTreeMap<&str, BTreeSet<&str>> = BTreeMap::new();
        for (team, list) in members {
            for m in list {
                if let Some(user) = m["user"]["id"].as_str() {
                    member_ids.entry(team.as_str()).or_default().push(user);
                    teams_of.entry(user).or_default().insert(team.as_str());
                }
            }
        }
        let mut on_call: BTreeMap<&str, Vec<(u64, &str)>> = BTreeMap::new();
        for o in oncalls {
            if let (Some(ep), Some(user)) = (
                o["escalation_policy"]["id"].as_str(),
                o["user"]["id"].as_str(),
            ) {
                let level = o["escalation_level"].as_u64().unwrap_or(1);
                on_call.entry(ep).or_default().push((level, user));
            }
        }
        Self {
            settings,
            users: users.iter().collect(),
            teams: teams.iter().collect(),
            user_names,
            team_names,
            members: member_ids,
            teams_of,
            policies: policies
                .iter()
                .filter_map(|p| Some((str_of(p, "id")?, p)))
                .collect(),
            on_call,
        }
    }

    fn ns(&self) -> &str {
        &self.settings.namespace
    }

    fn user_ref(&self, id: &str) -> Option<String> {
        self.user_names
            .get(id)
            .map(|n| format!("user:{}/{n}", self.ns()))
    }

    fn group_ref(&self, id: &str) -> Option<String> {
        self.team_names
            .get(id)
            .map(|n| format!("group:{}/{n}", self.ns()))
    }

    /// Users as `(external id, entity)`.
    pub fn users(&self) -> Vec<(String, Entity)> {
        self.users
            .iter()
            .filter_map(|u| {
                let id = str_of(u, "id")?;
                let name = self.user_names.get(id)?;
                let mut e = Entity::new("User", self.ns(), name);
                e.metadata
                    .annotations
                    .insert("pagerduty.com/user-id".into(), id.to_string());
                let mut profile = Map::new();
                if let Some(n) = str_of(u, "name") {
                    profile.insert("displayName".into(), json!(n));
                }
                if let Some(m) = str_of(u, "email") {
                    profile.insert("email".into(), json!(m));
                }
                e.spec.insert("profile".into(), Value::Object(profile));
                let groups = named(
                    self.teams_of.get(id).into_iter().flatten(),
                    &self.team_names,
                );
                e.spec.insert("memberOf".into(), json!(groups));
                Some((id.to_string(), e))
            })
            .collect()
    }

    /// Teams as `(external id, entity)`.
    pub fn groups(&self) -> Vec<(String, Entity)> {
        self.teams
            .iter()
            .filter_map(|t| {
                let id = str_of(t, "id")?;
                let name = self.team_names.get(id)?;
                let mut e = Entity::new("Group", self.ns(), name);
                e.metadata.description = str_of(t, "description").map(str::to_string);
                e.metadata
                    .annotations
                    .insert("pagerduty.com/team-id".into(), id.to_string());
                e.spec.insert("type".into(), json!("team"));
                if let Some(n) = str_of(t, "name") {
                    e.spec.insert("profile".into(), json!({"displayName": n}));
                }
                if let Some(parent) = t["parent"]["id"]
                    .as_str()
                    .and_then(|p| self.team_names.get(p))
                {
                    e.spec.insert("parent".into(), json!(parent));
                }
                e.spec.insert("children".into(), json!([]));
                let members = named(self.members.get(id).into_iter().flatten(), &self.user_names);
                e.spec.insert("members".into(), json!(members));
                Some((id.to_string(), e))
            })
            .collect()
    }

    /// A service as the Component it belongs to, with its on-call facts.
    pub fn component(&self, service: &Value) -> Option<(String, Entity)> {
        let id = str_of(service, "id")?;
        let service_name = str_of(service, "name")?;
        let name = self
            .settings
            .service_names
            .get(service_name)
            .cloned()
            .or_else(|| entity_name(service_name))?;
        let mut e = Entity::new("Component", self.ns(), &name);
        if !service_name.eq_ignore_ascii_case(&name) {
            e.metadata.title = Some(service_name.to_string());
        }
        e.metadata.description = str_of(service, "description").map(str::to_string);
        let a = &mut e.metadata.annotations;
        a.insert("pagerduty.com/service-id".into(), id.to_string());
        if let Some(url) = str_of(service, "html_url") {
            e.metadata
                .links
                .push(json!({"url": url, "title": "PagerDuty service", "icon": "alert"}));
        }
        e.spec.insert("type".into(), json!("service"));
        // Every PagerDuty service is a service: the type is ours, not PagerDuty's.
        surveyor_model::kit::mark_defaulted(&mut e, &["/spec/type"]);
        e.spec.insert(
            "lifecycle".into(),
            json!(if str_of(service, "status") == Some("disabled") {
                "deprecated"
            } else {
                "production"
            }),
        );
        let policy_id = service["escalation_policy"]["id"].as_str();
        let policy = policy_id.and_then(|p| self.policies.get(p)).copied();
        // The service's own team, else its escalation policy's.
        let owner = service["teams"]
            .as_array()
            .into_iter()
            .flatten()
            .find_map(|t| t["id"].as_str().and_then(|t| self.group_ref(t)))
            .map(|r| (r, "service team"))
            .or_else(|| {
                let ep = policy.or_else(|| Some(&service["escalation_policy"]))?;
                ep["teams"]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .find_map(|t| t["id"].as_str().and_then(|t| self.group_ref(t)))
                    .map(|r| (r, "escalation policy team"))
            });
        if let Some((owner, from)) = owner {
            e.spec.insert("owner".into(), json!(owner));
            e.metadata
                .annotations
                .insert("surveyor.dev/pagerduty-owner-from".into(), from.into());
        }
        let mut on_call = Map::new();
        if let Some(p) = policy_id {
            e.metadata
                .annotations
                .insert("pagerduty.com/escalation-policy-id".into(), p.to_string());
            let name = policy
                .and_then(|p| str_of(p, "name"))
                .or_else(|| str_of(&service["escalation_policy"], "summary"));
            on_call.insert("escalationPolicy".into(), json!(name.unwrap_or(p)));
            let now = self.on_call.get(p).cloned().unwrap_or_default();
            let primary: BTreeSet<String> = now
                .iter()
                .filter(|(level, _)| *level == 1)
                .filter_map(|(_, u)| self.user_ref(u))
                .collect();
            let everyone: BTreeSet<String> =
                now.iter().filter_map(|(_, u)| self.user_ref(u)).collect();
            let schedules = policy
                .map(|p| {
                    p["escalation_rules"]
                        .as_array()
                        .into_iter()
                        .flatten()
                        .flat_map(|r| r["targets"].as_array().into_iter().flatten())
                        .filter(|t| {
                            t["type"]
                                .as_str()
                                .is_some_and(|k| k.starts_with("schedule"))
                        })
                        .count()
                })
                .unwrap_or(0);
            on_call.insert("covered".into(), json!(!primary.is_empty()));
            on_call.insert("primary".into(), json!(primary));
            on_call.insert("onCallNow".into(), json!(everyone));
            on_call.insert("schedules".into(), json!(schedules));
            if let Some(rules) = policy.and_then(|p| p["escalation_rules"].as_array()) {
                on_call.insert("levels".into(), json!(rules.len()));
            }
        } else {
            on_call.insert("covered".into(), json!(false));
        }
        if let Some(urgency) = urgency(&service["incident_urgency_rule"]) {
            on_call.insert("urgency".into(), json!(urgency));
        }
        e.spec.insert("onCall".into(), Value::Object(on_call));
        Some((id.to_string(), e))
    }
}

/// A service's incident urgency: `high`, `low` or `severity_based` when constant,
/// `support-hours` when it depends on the time of day.
fn urgency(rule: &Value) -> Option<&str> {
    match rule["type"].as_str()? {
        "constant" => rule["urgency"].as_str(),
        "use_support_hours" => Some("support-hours"),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urgency_is_the_constant_one_or_says_it_follows_support_hours() {
        let constant = json!({"type": "constant", "urgency": "high"});
        assert_eq!(urgency(&constant), Some("high"));
        let hours = json!({"type": "use_support_hours",
            "during_support_hours": {"type": "constant", "urgency": "high"},
            "outside_support_hours": {"type": "constant", "urgency": "low"}});
        assert_eq!(urgency(&hours), Some("support-hours"));
        assert_eq!(urgency(&Value::Null), None);
    }

    #[test]
    fn service_names_become_component_names() {
        assert_eq!(
            entity_name("Billing Api 3").as_deref(),
            Some("billing-api-3")
        );
        assert_eq!(
            entity_name("Payments / API (prod)").as_deref(),
            Some("payments-api-prod")
        );
        assert_eq!(entity_name("!!!"), None);
    }
}
