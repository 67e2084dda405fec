//! The GitLab fake answers like GitLab: keyset and offset pages (totals only up to 10,000),
//! GraphQL blobs in GitLab's CODEOWNERS dialect, members direct and inherited, tokens, limits.

use surveyor_repofiles::{CodeOwners, Flavor, Owner};

use super::*;
use crate::OrgSpec;

struct Got {
    status: u16,
    headers: reqwest::header::HeaderMap,
    body: Value,
}

async fn get_with(url: &str, header: (&str, &str)) -> Got {
    let r = reqwest::Client::new()
        .get(url)
        .header(header.0, header.1)
        .send()
        .await
        .unwrap();
    let status = r.status().as_u16();
    let headers = r.headers().clone();
    let text = r.text().await.unwrap();
    Got {
        status,
        headers,
        body: serde_json::from_str(&text).unwrap_or(Value::Null),
    }
}

async fn get(fake: &GitlabFake, path: &str) -> Got {
    get_with(
        &format!("{}/api/v4{path}", fake.url()),
        ("private-token", GITLAB_TOKEN),
    )
    .await
}

async fn post(fake: &GitlabFake, query: &str, vars: Value) -> Value {
    reqwest::Client::new()
        .post(format!("{}/api/graphql", fake.url()))
        .bearer_auth(GITLAB_TOKEN)
        .json(&json!({"query": query, "variables": vars}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap()
}

fn header<'a>(g: &'a Got, name: &str) -> Option<&'a str> {
    g.headers.get(name).and_then(|v| v.to_str().ok())
}

fn next_link(g: &Got) -> Option<String> {
    let link = header(g, "link")?;
    link.split(',').find_map(|part| {
        let (target, rel) = part.split_once(';')?;
        rel.contains("rel=\"next\"")
            .then(|| target.trim().trim_matches(['<', '>']).to_string())
    })
}

const PROJECTS: &str = "/groups/acme/projects?include_subgroups=true&with_shared=false&pagination=keyset&order_by=id&sort=asc&per_page=7";

/// The `username`s in a list of members.
fn usernames(members: &Value) -> BTreeSet<String> {
    members
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["username"].as_str().unwrap().to_string())
        .collect()
}

#[tokio::test]
async fn projects_page_by_keyset_and_only_selected_ones_are_served() {
    let org = Org::generate(&OrgSpec::small());
    let fake = GitlabFake::start_with(org.clone(), every_other)
        .await
        .unwrap();
    let mut url = format!("{}/api/v4{PROJECTS}", fake.url());
    let mut ids = Vec::new();
    loop {
        let page = get_with(&url, ("private-token", GITLAB_TOKEN)).await;
        assert_eq!(page.status, 200);
        assert!(
            header(&page, "x-total").is_none(),
            "keyset pages carry no totals"
        );
        assert!(header(&page, "ratelimit-remaining").is_some());
        for p in page.body.as_array().unwrap() {
            ids.push(p["id"].as_u64().unwrap());
            let path = p["path_with_namespace"].as_str().unwrap();
            let ns = p["namespace"]["full_path"].as_str().unwrap();
            assert_eq!(path, format!("{ns}/{}", p["path"].as_str().unwrap()));
            assert!(ns.starts_with("acme/"), "{ns}");
        }
        match next_link(&page) {
            Some(next) => {
                assert!(next.contains("id_after="), "{next}");
                url = next;
            }
            None => break,
        }
    }
    let expected: Vec<u64> = org
        .repos
        .iter()
        .filter(|r| every_other(r))
        .map(|r| r.id)
        .collect();
    assert_eq!(ids, expected);
    assert_eq!(
        fake.stats().by_target["rest:projects:acme"],
        expected.len().div_ceil(7) as u64
    );

    // Only the projects of one subgroup without include_subgroups.
    let team = &org.teams[0];
    let own = get(&fake, &format!("/groups/{}/projects?per_page=100", team.id)).await;
    let n = org
        .repos
        .iter()
        .filter(|r| every_other(r) && r.owner_team == 0)
        .count();
    assert_eq!(own.body.as_array().unwrap().len(), n);
    assert_eq!(header(&own, "x-total"), Some(n.to_string().as_str()));
}

#[tokio::test]
async fn offset_totals_stop_at_ten_thousand_records() {
    let org = Org::generate(&OrgSpec {
        teams: 2,
        people: 5,
        repos: OFFSET_TOTAL_CAP + 5,
        ..OrgSpec::small()
    });
    let fake = GitlabFake::start(org).await.unwrap();
    let page = get(
        &fake,
        "/groups/acme/projects?include_subgroups=true&per_page=100&page=2",
    )
    .await;
    assert_eq!(page.status, 200);
    assert_eq!(page.body.as_array().unwrap().len(), 100);
    assert_eq!(header(&page, "x-total"), None);
    assert_eq!(header(&page, "x-total-pages"), None);
    assert_eq!(header(&page, "x-next-page"), Some("3"));
    let link = header(&page, "link").unwrap();
    assert!(!link.contains("rel=\"last\""), "{link}");
    assert!(link.contains("rel=\"next\""), "{link}");

    let small = get(&fake, "/groups/acme/descendant_groups?per_page=100").await;
    assert_eq!(header(&small, "x-total"), Some("2"));

    let refused = get(
        &fake,
        "/groups/acme/projects?include_subgroups=true&per_page=100&page=501",
    )
    .await;
    assert_eq!(refused.status, 405);
}

#[tokio::test]
async fn graphql_serves_blobs_in_gitlab_syntax() {
    let org = Org::generate(&OrgSpec::small());
    let fake = GitlabFake::start(org.clone()).await.unwrap();
    let query = "query($ids: [ID!], $paths: [String!]!, $first: Int) { projects(ids: $ids, first: $first) { pageInfo { hasNextPage endCursor } nodes { id fullPath repository { blobs(paths: $paths) { nodes { path rawTextBlob } } } } } }";
    let ids: Vec<String> = org.repos.iter().take(20).map(project_gid).collect();
    let paths = [
        "CODEOWNERS",
        "docs/CODEOWNERS",
        ".gitlab/CODEOWNERS",
        ".github/CODEOWNERS",
        "Cargo.toml",
    ];
    let body = post(
        &fake,
        query,
        json!({"ids": ids, "paths": paths, "first": 100}),
    )
    .await;
    let nodes = body["data"]["projects"]["nodes"].as_array().unwrap();
    assert_eq!(nodes.len(), 20);
    let mut sections = 0;
    for node in nodes {
        let repo = org
            .repos
            .iter()
            .find(|r| project_gid(r) == node["id"].as_str().unwrap())
            .unwrap();
        let blobs = node["repository"]["blobs"]["nodes"].as_array().unwrap();
        assert!(blobs.iter().all(|b| b["path"] != ".github/CODEOWNERS"));
        let codeowners = blobs
            .iter()
            .find(|b| b["path"].as_str().unwrap().ends_with("CODEOWNERS"))
            .unwrap();
        let text = codeowners["rawTextBlob"].as_str().unwrap();
        sections += usize::from(text.contains("[Documentation]"));
        let parsed = CodeOwners::parse(text, Flavor::GitLab);
        assert!(parsed.errors.is_empty(), "{text}: {:?}", parsed.errors);
        let owner = &parsed.repo_owners()[0];
        let Owner::Team(path) = owner else {
            panic!("{owner:?} in {text}")
        };
        let slug = &org.teams[repo.owner_team].slug;
        assert!(
            path.starts_with("acme/") && path.ends_with(&format!("/{slug}")),
            "{path}"
        );
        let cargo = blobs.iter().find(|b| b["path"] == "Cargo.toml");
        assert_eq!(
            cargo.and_then(|b| b["rawTextBlob"].as_str()),
            repo.files.get("Cargo.toml").map(String::as_str)
        );
    }
    assert!(sections > 0, "some files have a second section");

    fake.set_max_projects_per_query(10);
    let body = post(&fake, query, json!({"ids": ids, "paths": paths})).await;
    let message = body["errors"][0]["message"].as_str().unwrap();
    assert!(
        message.contains("exceeds max complexity of 250"),
        "{message}"
    );
    assert_eq!(fake.stats().too_complex, 1);

    let users =
        "query($ids: [ID!]) { users(ids: $ids, first: 100) { nodes { id username publicEmail } } }";
    let ids: Vec<String> = org.people.iter().take(5).map(user_gid).collect();
    let body = post(&fake, users, json!({"ids": ids})).await;
    let nodes = body["data"]["users"]["nodes"].as_array().unwrap();
    assert_eq!(nodes.len(), 5);
    assert_eq!(nodes[0]["username"], org.people[0].login.as_str());
}

#[tokio::test]
async fn members_direct_and_inherited() {
    let org = Org::generate(&OrgSpec::small());
    let fake = GitlabFake::start(org.clone()).await.unwrap();
    let nested = org.teams.iter().position(|t| t.parent.is_some()).unwrap();
    let team = &org.teams[nested];
    let direct = get(&fake, &format!("/groups/{}/members?per_page=100", team.id)).await;
    let logins = usernames(&direct.body);
    let expected: BTreeSet<String> = team
        .members
        .iter()
        .map(|m| org.people[*m].login.clone())
        .collect();
    assert_eq!(logins, expected);
    assert!(
        direct.body[0]["access_level"].as_u64().unwrap() >= DEVELOPER,
        "{}",
        direct.body
    );
    let all = get(
        &fake,
        &format!("/groups/{}/members/all?per_page=100", team.id),
    )
    .await;
    let all_logins = usernames(&all.body);
    assert!(all_logins.is_superset(&logins));
    assert!(
        all_logins.contains(&org.people[0].login),
        "the top group's owner"
    );

    let group = get(&fake, &format!("/groups/{}", percent_encode("acme"))).await;
    assert_eq!(group.body["id"], TOP_GROUP_ID);
    let sub = get(&fake, "/groups/acme/descendant_groups?per_page=100").await;
    assert_eq!(sub.body.as_array().unwrap().len(), org.teams.len());
    assert_eq!(get(&fake, "/groups/nope").await.status, 404);
}

#[tokio::test]
async fn tokens_faults_limits_and_etags() {
    let org = Org::generate(&OrgSpec::small());
    let fake = GitlabFake::start(org.clone()).await.unwrap();
    let url = format!("{}/api/v4/groups/acme", fake.url());
    assert_eq!(get_with(&url, ("private-token", "wrong")).await.status, 401);
    let auth = format!("Bearer {GITLAB_TOKEN}");
    assert_eq!(get_with(&url, ("authorization", &auth)).await.status, 200);

    fake.add_fault(Fault::new("rest:members:acme/*", FaultAction::Status(500)).times(1));
    let slug = &org.teams[0].slug;
    let failed = get(&fake, &format!("/groups/acme%2F{slug}/members")).await;
    assert_eq!(failed.status, 500);
    assert_eq!(
        get(&fake, &format!("/groups/acme%2F{slug}/members"))
            .await
            .status,
        200
    );
    fake.add_fault(Fault::new("graphql:projects", FaultAction::BadJson));
    let r = reqwest::Client::new()
        .post(format!("{}/api/graphql", fake.url()))
        .header("private-token", GITLAB_TOKEN)
        .json(&json!({"query": "{ projects(ids: []) { nodes { id } } }"}))
        .send()
        .await
        .unwrap();
    assert!(r.text().await.unwrap().starts_with("<!DOCTYPE html>"));

    fake.throttle(1);
    let limited = get(&fake, "/groups/acme").await;
    assert_eq!(limited.status, 429);
    assert_eq!(header(&limited, "retry-after"), Some("1"));
    assert_eq!(get(&fake, "/groups/acme").await.status, 200);

    let first = get(&fake, "/groups/acme").await;
    let etag = header(&first, "etag").unwrap().to_string();
    let r = reqwest::Client::new()
        .get(&url)
        .header("private-token", GITLAB_TOKEN)
        .header("if-none-match", &etag)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 304);
    assert_eq!(fake.stats().not_modified, 1);
}

#[tokio::test]
async fn the_org_changes_between_requests() {
    let org = Org::generate(&OrgSpec::small());
    let fake = GitlabFake::start(org.clone()).await.unwrap();
    fake.with_org(|o| {
        o.rename_repo(0, "renamed-project");
        o.delete_repo(1);
    });
    let page = get(
        &fake,
        "/groups/acme/projects?include_subgroups=true&per_page=100",
    )
    .await;
    let list = page.body.as_array().unwrap();
    assert_eq!(list.len(), org.repos.len() - 1);
    assert_eq!(list[0]["id"], org.repos[0].id);
    assert_eq!(list[0]["path"], "renamed-project");
    assert!(!fake.serves(&fake.org().repos[1]));
}

#[tokio::test]
async fn a_change_after_requests_is_served_by_the_next_one() {
    let org = Org::generate(&OrgSpec::small());
    let fake = GitlabFake::start(org.clone()).await.unwrap();
    let projects = "/groups/acme/projects?include_subgroups=true&per_page=100";
    let groups = "/groups/acme/descendant_groups?per_page=100";
    let before = get(&fake, projects).await;
    let before_groups = get(&fake, groups).await;
    let repo = &org.repos[2];
    let project = format!("/projects/{}", repo.id);
    let served = get(&fake, &project).await;
    assert_eq!(served.body["path"], repo.name.as_str());
    // Another live team than the repository's, whose group the project moves to.
    let team = org
        .teams
        .iter()
        .position(|t| {
            t.active
                && org
                    .teams
                    .get(repo.owner_team)
                    .is_none_or(|o| o.slug != t.slug)
        })
        .unwrap();
    let (team_id, team_slug) = (org.teams[team].id, org.teams[team].slug.clone());

    fake.with_org(|o| {
        o.rename_repo(0, "renamed-project");
        o.delete_repo(1);
        o.set_owner(2, team);
    });

    let after = get(&fake, projects).await;
    let list = after.body.as_array().unwrap();
    assert_eq!(
        list.len(),
        before.body.as_array().unwrap().len() - 1,
        "the deleted project is gone"
    );
    assert_eq!(list[0]["path"], "renamed-project");
    assert!(list.iter().all(|p| p["id"] != org.repos[1].id));
    assert_eq!(
        get(&fake, &format!("/projects/{}", org.repos[1].id))
            .await
            .status,
        404
    );
    let moved = get(&fake, &project).await;
    assert_eq!(moved.body["namespace"]["id"], team_id);
    assert!(
        moved.body["path_with_namespace"]
            .as_str()
            .unwrap()
            .ends_with(&format!("{team_slug}/{}", repo.name)),
        "{}",
        moved.body["path_with_namespace"]
    );
    let query =
        "query($ids: [ID!], $paths: [String!]!) { projects(ids: $ids) { nodes { id fullPath } } }";
    let body = post(
        &fake,
        query,
        json!({"ids": [project_gid(&org.repos[0]), project_gid(&org.repos[1])], "paths": []}),
    )
    .await;
    let nodes = body["data"]["projects"]["nodes"].as_array().unwrap();
    assert_eq!(nodes.len(), 1, "{body}");
    assert!(
        nodes[0]["fullPath"]
            .as_str()
            .unwrap()
            .ends_with("/renamed-project")
    );

    // A team disbanded: its group goes (and, with it, what hung from it moves up).
    let gone = org
        .teams
        .iter()
        .position(|t| t.active && t.id != team_id && t.id != org.teams[repo.owner_team].id)
        .unwrap();
    fake.with_org(|o| o.disband_team(gone));
    let after_groups = get(&fake, groups).await;
    assert_eq!(
        after_groups.body.as_array().unwrap().len(),
        before_groups.body.as_array().unwrap().len() - 1
    );
    assert!(
        after_groups
            .body
            .as_array()
            .unwrap()
            .iter()
            .all(|g| g["id"] != org.teams[gone].id)
    );
    assert_eq!(
        get(&fake, &format!("/groups/{}", org.teams[gone].id))
            .await
            .status,
        404
    );
}
