//! The fake answers like Jira: Cloud pages and Data Center arrays, expansions, credentials per
//! flavor, faults, and a site that keeps deactivated leads and projects without one.

use super::*;
use crate::OrgSpec;

fn small() -> Org {
    Org::generate(&OrgSpec::small())
}

async fn get(fake: &JiraFake, path: &str, auth: &str) -> (u16, HeaderMap, Value) {
    let r = reqwest::Client::new()
        .get(format!("{}{path}", fake.url()))
        .header("authorization", auth)
        .send()
        .await
        .unwrap();
    let status = r.status().as_u16();
    let headers = r.headers().clone();
    (status, headers, r.json().await.unwrap_or(Value::Null))
}

/// The body of a `200 OK` answer.
async fn get_ok(fake: &JiraFake, path: &str, auth: &str) -> Value {
    let (status, _, body) = get(fake, path, auth).await;
    assert_eq!(status, 200, "{path}");
    body
}

fn basic() -> String {
    format!(
        "Basic {}",
        STANDARD.encode(format!("{JIRA_EMAIL}:{JIRA_API_TOKEN}"))
    )
}

fn bearer() -> String {
    format!("Bearer {JIRA_PAT}")
}

#[test]
fn a_site_has_a_project_per_area_with_its_repositories_as_components() {
    let org = small();
    let site = JiraSite::from_org(&org);
    let areas: BTreeSet<&str> = org.repos.iter().map(area_of).collect();
    assert_eq!(site.projects.len(), areas.len());
    let keys: BTreeSet<&str> = site.projects.iter().map(|p| p.key.as_str()).collect();
    assert_eq!(keys.len(), site.projects.len(), "keys are unique");
    let payments = site
        .projects
        .iter()
        .find(|p| p.area == "payments")
        .expect("a payments project");
    assert_eq!(
        (payments.key.as_str(), payments.name.as_str()),
        ("PAY", "Payments")
    );
    let total: usize = site.projects.iter().map(|p| site.components(p).len()).sum();
    assert_eq!(total, org.repos.len());
    // What the connector has to cope with is there.
    assert!(site.projects.iter().any(|p| p.lead.is_none()));
    assert!(site.projects.iter().any(|p| p.category.is_none()));
    assert!(site.projects.iter().any(|p| p.description.is_empty()));
    let components: Vec<JiraComponent> = site
        .projects
        .iter()
        .flat_map(|p| site.components(p))
        .collect();
    assert!(components.iter().any(|c| c.lead.is_none()));
    assert!(
        components
            .iter()
            .filter_map(|c| c.lead)
            .any(|l| !site.user_active(l)),
        "some component leads are deactivated"
    );
    for c in &components {
        let repo = &org.repos[c.repo];
        if let Some(lead) = c.lead {
            assert!(org.teams[repo.owner_team].members.contains(&lead));
        }
    }
    assert!(site.account_id(0).starts_with("712020:"));
    assert_eq!(site.account_id(1).len(), 24);
    assert_eq!(site.user_key(0), org.people[0].login);
    assert_eq!(site.user_key(1), "JIRAUSER10001");
}

#[tokio::test]
async fn cloud_pages_projects_and_components_and_expands_on_request() {
    let org = small();
    let fake = JiraFake::start(&org, JiraFlavor::Cloud).await.unwrap();
    let site = fake.site();
    let mut keys = Vec::new();
    let mut start = 0;
    loop {
        let path = format!(
            "/rest/api/3/project/search?startAt={start}&maxResults=4&expand=lead%2Cdescription"
        );
        let (status, _, body) = get(&fake, &path, &basic()).await;
        assert_eq!(status, 200, "{body}");
        assert_eq!(body["total"], site.projects.len());
        for p in body["values"].as_array().unwrap() {
            keys.push(p["key"].as_str().unwrap().to_string());
            assert!(p.get("description").is_some(), "expanded");
        }
        if body["isLast"].as_bool().unwrap() {
            assert!(body.get("nextPage").is_none());
            break;
        }
        assert!(body["nextPage"].as_str().unwrap().contains("startAt="));
        start += body["values"].as_array().unwrap().len();
    }
    let mut sorted = keys.clone();
    sorted.sort();
    assert_eq!(keys, sorted, "ordered by key");
    assert_eq!(keys.len(), site.projects.len());

    let (_, _, bare) = get(&fake, "/rest/api/3/project/search", &basic()).await;
    let first = &bare["values"][0];
    assert!(first.get("lead").is_none() && first.get("description").is_none());

    let pay = site.project("PAY").unwrap();
    let path = format!("/rest/api/3/project/{}/component?maxResults=2", pay.id);
    let body = get_ok(&fake, &path, &basic()).await;
    assert_eq!(body["values"].as_array().unwrap().len(), 2);
    assert_eq!(body["total"], site.components(pay).len());
    let c = &body["values"][0];
    assert_eq!(c["project"], "PAY");
    assert_eq!(c["projectId"], pay.id.parse::<u64>().unwrap());
    if c.get("lead").is_some() {
        assert!(c["lead"]["accountId"].is_string() && c["lead"].get("key").is_none());
    }
    // Jira's own cap wins over maxResults.
    fake.set_max_results_cap(3);
    let (_, _, body) = get(&fake, "/rest/api/3/project/search?maxResults=100", &basic()).await;
    assert_eq!(body["maxResults"], 3);
    assert_eq!(body["values"].as_array().unwrap().len(), 3);
}

#[tokio::test]
async fn data_center_answers_bare_arrays_with_user_keys() {
    let org = small();
    let fake = JiraFake::start(&org, JiraFlavor::DataCenter).await.unwrap();
    let site = fake.site();
    let body = get_ok(
        &fake,
        "/rest/api/2/project?expand=lead,description",
        &bearer(),
    )
    .await;
    let projects = body.as_array().unwrap();
    assert_eq!(projects.len(), site.projects.len());
    let led = projects.iter().find(|p| p.get("lead").is_some()).unwrap();
    assert!(led["lead"]["key"].is_string() && led["lead"]["name"].is_string());
    assert!(led["lead"].get("accountId").is_none());
    let pay = site.project("PAY").unwrap();
    let path = format!("/rest/api/2/project/{}/components", pay.id);
    let body = get_ok(&fake, &path, &bearer()).await;
    assert_eq!(body.as_array().unwrap().len(), site.components(pay).len());
    // A Data Center site has no v3, and a Cloud token is no good here.
    assert_eq!(
        get(&fake, "/rest/api/3/project/search", &bearer()).await.0,
        404
    );
    assert_eq!(get(&fake, "/rest/api/2/project", &basic()).await.0, 401);
    let stats = fake.stats();
    assert_eq!(stats.by_scheme.get("bearer"), Some(&3));
    assert_eq!(stats.by_scheme.get("basic"), Some(&1));
    assert_eq!(stats.unauthorized, 1);
    assert_eq!(stats.seen[0].query, "expand=lead,description");
}

#[tokio::test]
async fn bad_credentials_get_401_with_a_challenge() {
    let fake = JiraFake::start(&small(), JiraFlavor::Cloud).await.unwrap();
    let wrong = format!("Basic {}", STANDARD.encode(format!("{JIRA_EMAIL}:nope")));
    let (status, headers, body) = get(&fake, "/rest/api/3/project/search", &wrong).await;
    assert_eq!(status, 401);
    assert!(headers.contains_key("www-authenticate"));
    assert!(body["errorMessages"][0].is_string());
    assert_eq!(
        get(&fake, "/rest/api/3/project/search", &bearer()).await.0,
        401
    );
    assert_eq!(fake.stats().unauthorized, 2);
}

#[tokio::test]
async fn faults_hit_their_target_as_often_as_asked() {
    let fake = JiraFake::start(&small(), JiraFlavor::Cloud).await.unwrap();
    fake.add_fault(
        JiraFault::new(
            "projects",
            JiraFaultAction::RateLimited {
                retry_after_secs: 7,
            },
        )
        .times(1),
    );
    fake.add_fault(JiraFault::new(
        "components:BIL",
        JiraFaultAction::Status(503),
    ));
    let (status, headers, _) = get(&fake, "/rest/api/3/project/search", &basic()).await;
    assert_eq!(status, 429);
    assert_eq!(headers["retry-after"], "7");
    assert_eq!(
        get(&fake, "/rest/api/3/project/search", &basic()).await.0,
        200
    );
    let bil = fake.site().project("BIL").unwrap().id.clone();
    let path = format!("/rest/api/3/project/{bil}/component");
    assert_eq!(get(&fake, &path, &basic()).await.0, 503);
    assert_eq!(
        get(&fake, "/rest/api/3/project/BIL/component", &basic())
            .await
            .0,
        503
    );
    let pay = fake.site().project("PAY").unwrap().id.clone();
    let ok = format!("/rest/api/3/project/{pay}/component");
    assert_eq!(get(&fake, &ok, &basic()).await.0, 200);
    let stats = fake.stats();
    assert_eq!((stats.rate_limited, stats.faults), (1, 3));
}

#[tokio::test]
async fn mutations_show_in_the_next_answer() {
    let fake = JiraFake::start(&small(), JiraFlavor::Cloud).await.unwrap();
    let site = fake.site();
    let pay = site.project("PAY").unwrap().clone();
    let victim = site.components(&pay)[0].clone();
    assert!(fake.remove_component(&victim.id));
    assert!(!fake.remove_component(&victim.id), "already gone");
    assert!(fake.set_project_key("PAY", "PMT"));
    assert!(!fake.set_project_key("PMT", "BIL"), "taken");
    let path = format!("/rest/api/3/project/{}/component", pay.id);
    let (_, _, body) = get(&fake, &path, &basic()).await;
    let values = body["values"].as_array().unwrap();
    assert_eq!(values.len(), site.components(&pay).len() - 1);
    assert!(values.iter().all(|c| c["id"] != victim.id.as_str()));
    assert!(values.iter().all(|c| c["project"] == "PMT"));
    // A repository deleted from the org takes its component with it.
    let other = site.components(&pay)[1].clone();
    fake.with_org(|o| o.delete_repo(other.repo));
    let (_, _, body) = get(&fake, &path, &basic()).await;
    assert_eq!(
        body["values"].as_array().unwrap().len(),
        site.components(&pay).len() - 2
    );
    // Someone who leaves the org shows as deactivated wherever they lead.
    let lead = site
        .projects
        .iter()
        .filter_map(|p| p.lead)
        .find(|l| site.user_active(*l))
        .unwrap();
    fake.with_org(|o| o.remove_person(lead));
    assert!(!fake.site().user_active(lead));
}
