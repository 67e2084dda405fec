//! A fake PagerDuty REST API v2 on loopback for the simulated org: services named after its
//! repositories, its teams (some without members), users, escalation policies (some without
//! anyone on call) and on-calls, with classic offset pagination (`limit`, `offset`, `more`,
//! the 10,000-record cap), 429s with rate-limit headers, and token checks. Once told where
//! ([`PagerDutyFake::send_webhooks`]), it announces service changes as signed v3 webhooks.

use std::collections::{BTreeMap, BTreeSet};

use axum::http::{HeaderMap, StatusCode, Uri};
use serde_json::{Value, json};

use crate::org::Org;
use crate::serve::{
    Fake, Fault, FaultAction, Faults, JsonApi, ValueAnswer, answer_json_api, header,
};
use crate::webhook::{Vendor, WebhookSink, Webhooks};

mod hooks;
pub use hooks::webhook_events;

/// The API token the fake accepts (`Authorization: Token token=...`).
pub const PD_TOKEN: &str = "u+simulatedpagerdutytoken";

/// Classic pagination stops here: `offset + limit` may not pass it.
pub const OFFSET_CAP: usize = 10_000;

/// One PagerDuty account's objects, derived from an org and editable between runs.
#[derive(Debug, Clone)]
pub struct Account {
    pub subdomain: String,
    /// By id (`P` + 6 characters, like PagerDuty's).
    pub services: BTreeMap<String, Value>,
    pub teams: BTreeMap<String, Value>,
    /// Team id -> (user id, role).
    pub members: BTreeMap<String, Vec<(String, String)>>,
    pub users: BTreeMap<String, Value>,
    pub policies: BTreeMap<String, Value>,
    /// Escalation policy ids whose schedule has nobody on call.
    pub uncovered: BTreeSet<String>,
}

/// Whether repository `repo` (its index in the org) has a PagerDuty service: two in three do.
pub fn has_service(repo: usize) -> bool {
    !repo.is_multiple_of(3)
}

fn pd_id(prefix: char, n: usize) -> String {
    // PagerDuty ids are 7 upper-case letters and digits starting with P; the second character
    // keeps each object type's ids apart here.
    const ALPHABET: &[u8] = b"0123456789ABCDEFGHJKLMNPQRSTUVWXYZ";
    let mut digits = [b'0'; 5];
    let mut x = n;
    for d in digits.iter_mut().rev() {
        *d = ALPHABET[x % ALPHABET.len()];
        x /= ALPHABET.len();
    }
    format!("P{prefix}{}", String::from_utf8_lossy(&digits))
}

fn title(s: &str) -> String {
    s.split('-')
        .map(|w| {
            let mut c = w.chars();
            c.next()
                .map(|f| f.to_uppercase().collect::<String>() + c.as_str())
                .unwrap_or_default()
        })
        .collect::<Vec<_>>()
        .join(" ")
}

impl Account {
    /// The org as its PagerDuty account: a team per org team (every fifth has no members
    /// there), a user per person, an escalation policy per team with members (every fourth
    /// without anyone on call), a service for two of every three repositories, and two services
    /// nobody wrote code for.
    pub fn from_org(org: &Org) -> Self {
        let mut a = Self {
            subdomain: org.name.clone(),
            services: BTreeMap::new(),
            teams: BTreeMap::new(),
            members: BTreeMap::new(),
            users: BTreeMap::new(),
            policies: BTreeMap::new(),
            uncovered: BTreeSet::new(),
        };
        let user_ids: Vec<String> = (0..org.people.len()).map(|i| pd_id('U', i)).collect();
        for (i, p) in org.people.iter().enumerate().filter(|(_, p)| p.active) {
            let email = p
                .email
                .clone()
                .unwrap_or_else(|| format!("{}@{}.example", p.login, org.name));
            a.users.insert(
                user_ids[i].clone(),
                json!({"id": user_ids[i], "type": "user", "name": p.name, "email": email,
                    "summary": p.name, "role": "user", "time_zone": "Europe/London", "job_title": null,
                    "html_url": format!("https://{}.pagerduty.com/users/{}", org.name, user_ids[i]),
                    "self": format!("https://api.pagerduty.com/users/{}", user_ids[i])}),
            );
        }
        let mut policy_of_team: BTreeMap<usize, String> = BTreeMap::new();
        for (i, t) in org.teams.iter().enumerate().filter(|(_, t)| t.active) {
            let id = pd_id('T', i);
            let name = title(&t.slug);
            a.teams.insert(
                id.clone(),
                json!({"id": id, "type": "team", "name": name, "summary": name,
                    "description": format!("{} on-call", name), "parent": null,
                    "html_url": format!("https://{}.pagerduty.com/teams/{id}", org.name),
                    "self": format!("https://api.pagerduty.com/teams/{id}")}),
            );
            let members: Vec<(String, String)> = if i % 5 == 4 {
                Vec::new()
            } else {
                t.members
                    .iter()
                    .filter(|m| org.people.get(**m).is_some_and(|p| p.active))
                    .enumerate()
                    .map(|(k, m)| {
                        let role = if k == 0 { "manager" } else { "responder" };
                        (user_ids[*m].clone(), role.to_string())
                    })
                    .collect()
            };
            if let Some((first, _)) = members.first() {
                let pid = pd_id('E', i);
                let schedule = pd_id('S', i);
                a.policies.insert(
                    pid.clone(),
                    json!({"id": pid, "type": "escalation_policy", "name": format!("{name} escalation"),
                        "summary": format!("{name} escalation"), "num_loops": 0, "on_call_handoff_notifications": "if_has_services",
                        "escalation_rules": [
                            {"id": pd_id('R', i), "escalation_delay_in_minutes": 30, "targets": [
                                {"id": schedule, "type": "schedule_reference", "summary": format!("{name} primary")}]},
                            {"id": pd_id('Q', i), "escalation_delay_in_minutes": 30, "targets": [
                                {"id": first, "type": "user_reference", "summary": "manager"}]}
                        ],
                        "teams": [{"id": id, "type": "team_reference", "summary": name}],
                        "html_url": format!("https://{}.pagerduty.com/escalation_policies/{pid}", org.name)}),
                );
                if i % 4 == 3 {
                    a.uncovered.insert(pid.clone());
                }
                policy_of_team.insert(i, pid);
            }
            a.members.insert(id, members);
        }
        for (i, r) in org.repos.iter().enumerate().filter(|(_, r)| r.active) {
            if !has_service(i) {
                continue;
            }
            // A planted service names another team than its owner's (its policy stays).
            let named = org.plants.pagerduty_team.get(&i).copied();
            let team_id = pd_id('T', named.unwrap_or(r.owner_team));
            let policy = policy_of_team.get(&r.owner_team).cloned();
            // Half the services name their team; the others leave it to the policy.
            let teams = if (i % 2 == 0 || named.is_some()) && a.teams.contains_key(&team_id) {
                json!([{"id": team_id, "type": "team_reference", "summary": a.teams[&team_id]["name"]}])
            } else {
                json!([])
            };
            a.add_service(pd_id('V', i), &title(&r.name), policy.as_deref(), teams);
        }
        for (k, name) in ["Legacy Billing Batch", "Status Page"].iter().enumerate() {
            let policy = policy_of_team.values().next().cloned();
            a.add_service(pd_id('W', k), name, policy.as_deref(), json!([]));
        }
        a
    }

    /// Adds a service (for tests that need many, like the offset cap).
    pub fn add_service(&mut self, id: String, name: &str, policy: Option<&str>, teams: Value) {
        let ep = match policy {
            Some(p) => {
                json!({"id": p, "type": "escalation_policy_reference", "summary": self.policies.get(p).map(|v| v["name"].clone()).unwrap_or_default()})
            }
            None => Value::Null,
        };
        // Two services in three page at high urgency, day and night.
        let urgency = if id.bytes().last().unwrap_or(0).is_multiple_of(3) {
            "low"
        } else {
            "high"
        };
        self.services.insert(
            id.clone(),
            json!({"id": id, "type": "service", "name": name, "summary": name,
                "incident_urgency_rule": {"type": "constant", "urgency": urgency},
                "description": format!("{name} in production"), "status": "active",
                "auto_resolve_timeout": 14400, "acknowledgement_timeout": 1800,
                "created_at": "2025-03-01T10:00:00Z", "alert_creation": "create_alerts_and_incidents",
                "escalation_policy": ep, "teams": teams,
                "html_url": format!("https://{}.pagerduty.com/service-directory/{id}", self.subdomain),
                "self": format!("https://api.pagerduty.com/services/{id}")}),
        );
    }

    /// The service with this name, if any.
    pub fn service_id(&self, name: &str) -> Option<String> {
        self.services
            .iter()
            .find(|(_, v)| v["name"] == name)
            .map(|(k, _)| k.clone())
    }

    /// Whether someone is on call at level 1 of escalation policy `policy` (a user the account
    /// has), as `/oncalls` shows it.
    pub fn on_call_at_level_one(&self, policy: &str) -> bool {
        self.oncalls(|p| p == policy).iter().any(|o| {
            o["escalation_policy"]["id"] == policy
                && o["escalation_level"] == 1
                && o["user"]["id"]
                    .as_str()
                    .is_some_and(|u| self.users.contains_key(u))
        })
    }

    /// On-call entries of the escalation policies `wanted` accepts: level 1 is the first team
    /// member (unless the schedule is empty), level 2 the manager named in the policy.
    fn oncalls(&self, wanted: impl Fn(&str) -> bool) -> Vec<Value> {
        let mut out = Vec::new();
        for (pid, p) in self.policies.iter().filter(|(pid, _)| wanted(pid)) {
            let team = p["teams"][0]["id"].as_str().unwrap_or_default();
            let first = self.members.get(team).and_then(|m| m.first());
            let ep =
                json!({"id": pid, "type": "escalation_policy_reference", "summary": p["name"]});
            if !self.uncovered.contains(pid)
                && let Some((user, _)) = first
            {
                out.push(json!({"escalation_policy": ep, "escalation_level": 1,
                    "schedule": {"id": p["escalation_rules"][0]["targets"][0]["id"], "type": "schedule_reference"},
                    "user": {"id": user, "type": "user_reference", "summary": self.users.get(user).map(|u| u["name"].clone()).unwrap_or_default()},
                    "start": "2026-11-23T09:00:00Z", "end": "2026-11-30T09:00:00Z"}));
            }
            if let Some(manager) = p["escalation_rules"][1]["targets"][0]["id"].as_str() {
                out.push(json!({"escalation_policy": ep, "escalation_level": 2, "schedule": null,
                    "user": {"id": manager, "type": "user_reference", "summary": self.users.get(manager).map(|u| u["name"].clone()).unwrap_or_default()},
                    "start": null, "end": null}));
            }
        }
        out
    }
}

#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct PagerDutyStats {
    pub requests: u64,
    pub throttled: u64,
    pub by_path: BTreeMap<String, u64>,
}

/// What a [`PagerDutyFake`] serves and counts.
pub struct PdState {
    account: Account,
    /// The next this-many requests answer 429.
    throttle: usize,
    stats: PagerDutyStats,
    /// Faults by path (`/services`, `/teams/PT00001/members`), a `prefix*`, or `*`.
    faults: Faults<Fault>,
    /// API keys accepted besides [`PD_TOKEN`].
    extra_tokens: Vec<String>,
    /// Where service changes are announced, once [`PagerDutyFake::send_webhooks`] ran.
    hooks: Option<Webhooks>,
}

/// The running fake; [`url`](Fake::url) is the API base (`api_url`). Faults are by request
/// path (`/services`), a path prefix ending in `*`, or `*`; `skip` counts matching requests, so
/// `Fault::new("/services", ..).skip(1)` fails from the second page. Dropping it stops it.
pub type PagerDutyFake = Fake<PdState, FaultAction, PagerDutyStats>;

impl PagerDutyFake {
    pub async fn start(account: Account) -> std::io::Result<Self> {
        let state = |_: &str| PdState {
            account,
            throttle: 0,
            stats: PagerDutyStats::default(),
            faults: Faults::default(),
            extra_tokens: Vec::new(),
            hooks: None,
        };
        Self::serve(state, answer_json_api, |s| &mut s.faults, |s| &mut s.stats).await
    }

    /// Changes the account between runs. With webhooks on, the events of the change are posted.
    pub fn with_account<R>(&self, change: impl FnOnce(&mut Account) -> R) -> R {
        let mut state = self.server.lock();
        let PdState { account, hooks, .. } = &mut *state;
        let Some(hooks) = hooks else {
            return change(account);
        };
        let before = account.clone();
        let result = change(account);
        hooks.post(webhook_events(&before, account));
        result
    }

    /// From now on, every change made through [`with_account`](Self::with_account) is announced
    /// to `sink` as an account-wide v3 webhook subscription would announce it (see
    /// [`crate::webhook`]). The returned sender tells what was planted.
    pub async fn send_webhooks(&self, sink: WebhookSink) -> Webhooks {
        let hooks = Webhooks::start(Vendor::PagerDuty, sink).await;
        self.server.lock().hooks = Some(hooks.clone());
        hooks
    }

    /// A copy of the account as the fake currently serves it.
    pub fn account(&self) -> Account {
        self.server.lock().account.clone()
    }

    /// The next `n` requests are rate limited (429).
    pub fn throttle(&self, n: usize) {
        self.server.lock().throttle = n;
    }

    /// Accepts `token` as well as [`PD_TOKEN`] (tests with their own values).
    pub fn add_token(&self, token: &str) {
        self.server.lock().extra_tokens.push(token.to_string());
    }
}

fn error(code: StatusCode, pd_code: u32, message: &str, errors: &[&str]) -> ValueAnswer {
    (
        code,
        Vec::new(),
        json!({"error": {"message": message, "code": pd_code, "errors": errors}}),
    )
}

impl JsonApi for PdState {
    const CONTENT_TYPE: &'static str = "application/json; charset=utf-8";
    const PROXY_ERROR_PAGE: &'static str =
        "<html><body><h1>503 Service Temporarily Unavailable</h1></body></html>";

    fn faults(&mut self) -> &mut Faults<Fault> {
        &mut self.faults
    }

    fn answer(&mut self, uri: &Uri, headers: &HeaderMap) -> ValueAnswer {
        answer(self, uri, headers)
    }

    fn failure(status: StatusCode) -> ValueAnswer {
        error(
            status,
            2000,
            status.canonical_reason().unwrap_or("Error"),
            &[],
        )
    }

    fn too_many_requests(retry_after_secs: u64) -> ValueAnswer {
        let (code, _, body) = error(
            StatusCode::TOO_MANY_REQUESTS,
            2020,
            "Rate Limit Exceeded",
            &[],
        );
        let headers = vec![
            ("ratelimit-limit", "960".into()),
            ("ratelimit-remaining", "0".into()),
            ("ratelimit-reset", retry_after_secs.to_string()),
            ("retry-after", retry_after_secs.to_string()),
        ];
        (code, headers, body)
    }

    fn cut_list(body: &mut Value, empty: bool) {
        // The list in an answer: its only array-valued field.
        let Some(key) = body
            .as_object()
            .and_then(|o| o.iter().find(|(_, v)| v.is_array()).map(|(k, _)| k.clone()))
        else {
            return;
        };
        if empty {
            body[key.as_str()] = json!([]);
        }
        body["more"] = json!(false);
        if empty && !body["total"].is_null() {
            body["total"] = json!(0);
        }
    }
}

fn answer(s: &mut PdState, uri: &Uri, headers: &HeaderMap) -> ValueAnswer {
    s.stats.requests += 1;
    let path = uri.path().to_string();
    *s.stats.by_path.entry(path.clone()).or_default() += 1;
    let authorised = header(headers, "authorization")
        .and_then(|v| v.strip_prefix("Token token="))
        .is_some_and(|t| t == PD_TOKEN || s.extra_tokens.iter().any(|e| e == t));
    if !authorised {
        return error(StatusCode::UNAUTHORIZED, 2006, "Unauthorized", &[]);
    }
    if s.throttle > 0 {
        s.throttle -= 1;
        s.stats.throttled += 1;
        let (code, _, body) = error(
            StatusCode::TOO_MANY_REQUESTS,
            2020,
            "Rate Limit Exceeded",
            &[],
        );
        return (
            code,
            vec![
                ("ratelimit-limit", "960".into()),
                ("ratelimit-remaining", "0".into()),
                ("ratelimit-reset", "1".into()),
            ],
            body,
        );
    }
    let mut params: Vec<(String, String)> = Vec::new();
    for kv in uri.query().unwrap_or_default().split('&') {
        if let Some((k, v)) = kv.split_once('=') {
            params.push((k.replace("%5B%5D", "[]"), v.to_string()));
        }
    }
    let param = |k: &str| {
        params
            .iter()
            .find(|(key, _)| key == k)
            .map(|(_, v)| v.as_str())
    };
    let includes: Vec<&str> = params
        .iter()
        .filter(|(k, _)| k == "include[]")
        .map(|(_, v)| v.as_str())
        .collect();
    let limit = param("limit")
        .and_then(|v| v.parse::<usize>().ok())
        .unwrap_or(25)
        .clamp(1, 100);
    let offset = param("offset")
        .and_then(|v| v.parse::<usize>().ok())
        .unwrap_or(0);
    if offset + limit > OFFSET_CAP {
        return error(
            StatusCode::BAD_REQUEST,
            2001,
            "Invalid Input Provided",
            &["Offset must be less than or equal to 10000 - limit."],
        );
    }
    let a = &s.account;
    let segments: Vec<&str> = path.trim_matches('/').split('/').collect();
    if let ["services", id] = segments.as_slice() {
        // One service, with the same includes as the list.
        return match a.services.get(*id) {
            Some(svc) => (
                StatusCode::OK,
                Vec::new(),
                json!({"service": expand(a, svc, &includes)}),
            ),
            None => error(StatusCode::NOT_FOUND, 2100, "Not Found", &[]),
        };
    }
    let policy_ids: Vec<&str> = params
        .iter()
        .filter(|(k, _)| k == "escalation_policy_ids[]")
        .map(|(_, v)| v.as_str())
        .collect();
    // Only the page's records are copied (and expanded): paging through a list stays linear.
    let page_of = |records: &mut dyn ExactSizeIterator<Item = &Value>| -> (usize, Vec<Value>) {
        let total = records.len();
        (total, records.skip(offset).take(limit).cloned().collect())
    };
    let (key, (total, page)): (&str, (usize, Vec<Value>)) = match segments.as_slice() {
        ["services"] => {
            let total = a.services.len();
            let page = a
                .services
                .values()
                .skip(offset)
                .take(limit)
                .map(|svc| expand(a, svc, &includes))
                .collect();
            ("services", (total, page))
        }
        ["teams"] => ("teams", page_of(&mut a.teams.values())),
        ["teams", id, "members"] => match a.members.get(*id) {
            Some(members) => (
                "members",
                (
                    members.len(),
                    members
                        .iter()
                        .skip(offset)
                        .take(limit)
                        .map(|(u, role)| json!({"user": {"id": u, "type": "user_reference", "summary": a.users.get(u).map(|x| x["name"].clone()).unwrap_or_default()}, "role": role}))
                        .collect(),
                ),
            ),
            None => return error(StatusCode::NOT_FOUND, 2100, "Not Found", &[]),
        },
        ["users"] => ("users", page_of(&mut a.users.values())),
        ["escalation_policies"] => ("escalation_policies", page_of(&mut a.policies.values())),
        ["oncalls"] => {
            let oncalls = a.oncalls(|p| policy_ids.is_empty() || policy_ids.contains(&p));
            let total = oncalls.len();
            (
                "oncalls",
                (total, oncalls.into_iter().skip(offset).take(limit).collect()),
            )
        }
        _ => return error(StatusCode::NOT_FOUND, 2100, "Not Found", &[]),
    };
    let more = offset + page.len() < total;
    let total_field = if param("total") == Some("true") {
        json!(total)
    } else {
        Value::Null
    };
    (
        StatusCode::OK,
        vec![
            ("ratelimit-limit", "960".into()),
            ("ratelimit-remaining", "959".into()),
            ("ratelimit-reset", "60".into()),
        ],
        json!({key: page, "limit": limit, "offset": offset, "total": total_field, "more": more}),
    )
}

/// A service as the API shows it: its escalation policy and teams in full when included.
fn expand(a: &Account, svc: &Value, includes: &[&str]) -> Value {
    let mut svc = svc.clone();
    if includes.contains(&"escalation_policies")
        && let Some(id) = svc["escalation_policy"]["id"].as_str()
        && let Some(p) = a.policies.get(id)
    {
        svc["escalation_policy"] = p.clone();
    }
    if includes.contains(&"teams") {
        let full: Vec<Value> = svc["teams"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|t| t["id"].as_str().and_then(|id| a.teams.get(id)).cloned())
            .collect();
        svc["teams"] = Value::Array(full);
    }
    svc
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::OrgSpec;

    async fn get(fake: &PagerDutyFake, path: &str) -> (u16, Value) {
        let r = reqwest::Client::new()
            .get(format!("{}{path}", fake.url()))
            .header("authorization", format!("Token token={PD_TOKEN}"))
            .send()
            .await
            .unwrap();
        (r.status().as_u16(), r.json().await.unwrap())
    }

    #[tokio::test]
    async fn pages_by_offset_up_to_the_cap() {
        let org = Org::generate(&OrgSpec::small());
        let account = Account::from_org(&org);
        let n = account.services.len();
        let fake = PagerDutyFake::start(account).await.unwrap();
        let (code, body) = get(&fake, "/services?limit=10&offset=0&total=true").await;
        assert_eq!(code, 200);
        assert_eq!(
            (body["more"].as_bool(), body["total"].as_u64()),
            (Some(true), Some(n as u64))
        );
        let (_, last) = get(&fake, &format!("/services?limit=10&offset={}", n - 1)).await;
        assert_eq!(
            (
                last["services"].as_array().unwrap().len(),
                last["more"].as_bool()
            ),
            (1, Some(false))
        );
        let (code, body) = get(&fake, "/services?limit=100&offset=9950").await;
        assert_eq!((code, body["error"]["code"].as_u64()), (400, Some(2001)));
    }

    /// Every record of a list, read 7 at a time.
    async fn all(fake: &PagerDutyFake, path: &str, key: &str) -> Vec<Value> {
        let mut out: Vec<Value> = Vec::new();
        loop {
            let sep = if path.contains('?') { '&' } else { '?' };
            let (code, body) = get(fake, &format!("{path}{sep}limit=7&offset={}", out.len())).await;
            assert_eq!(code, 200);
            out.extend(body[key].as_array().unwrap().iter().cloned());
            if body["more"] != true {
                return out;
            }
        }
    }

    #[tokio::test]
    async fn pages_put_together_are_the_whole_list_with_includes_and_filters() {
        let org = Org::generate(&OrgSpec::small());
        let account = Account::from_org(&org);
        let fake = PagerDutyFake::start(account.clone()).await.unwrap();
        let users = all(&fake, "/users", "users").await;
        assert_eq!(users, account.users.values().cloned().collect::<Vec<_>>());
        let services = all(&fake, "/services?include%5B%5D=teams", "services").await;
        let expanded: Vec<Value> = account
            .services
            .values()
            .map(|s| expand(&account, s, &["teams"]))
            .collect();
        assert_eq!(services, expanded);
        let policy = account.policies.keys().next().unwrap().clone();
        let path = format!("/oncalls?escalation_policy_ids%5B%5D={policy}");
        let oncalls = all(&fake, &path, "oncalls").await;
        assert!(!oncalls.is_empty());
        assert!(
            oncalls
                .iter()
                .all(|o| o["escalation_policy"]["id"] == policy.as_str())
        );
        assert_eq!(
            all(&fake, "/oncalls", "oncalls").await,
            account.oncalls(|_| true)
        );
    }

    #[tokio::test]
    async fn includes_expand_references_and_gaps_exist() {
        let org = Org::generate(&OrgSpec::small());
        let account = Account::from_org(&org);
        assert!(
            account.members.values().any(Vec::is_empty),
            "a team without members"
        );
        assert!(
            !account.uncovered.is_empty(),
            "a policy nobody is on call for"
        );
        let fake = PagerDutyFake::start(account).await.unwrap();
        let (_, body) = get(
            &fake,
            "/services?include%5B%5D=escalation_policies&include%5B%5D=teams&limit=100",
        )
        .await;
        let with_team = body["services"]
            .as_array()
            .unwrap()
            .iter()
            .find(|s| !s["teams"].as_array().unwrap().is_empty())
            .unwrap();
        assert_eq!(with_team["teams"][0]["type"], "team");
        assert_eq!(with_team["escalation_policy"]["type"], "escalation_policy");
        let r = reqwest::Client::new()
            .get(format!("{}/services", fake.url()))
            .header("authorization", "Token token=wrong")
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 401);
        fake.throttle(1);
        assert_eq!(get(&fake, "/teams").await.0, 429);
        assert_eq!(get(&fake, "/teams").await.0, 200);
    }
}
