//! The fake answers the way GitHub documents: paging, blobs, Link headers, ETags, limits, faults.

use super::*;
use crate::OrgSpec;

const REPOS: &str = r#"query($login: String!, $first: Int!, $after: String) {
  rateLimit { cost remaining resetAt limit }
  organization(login: $login) {
    repositories(first: $first, after: $after) {
      pageInfo { hasNextPage endCursor }
      nodes { id name codeowners: object(expression: "HEAD:.github/CODEOWNERS") { ... on Blob { text } }
              cargo: object(expression: "HEAD:Cargo.toml") { ... on Blob { text } } }
    }
  }
}"#;

async fn post(fake: &GithubFake, query: &str, vars: Value) -> (u16, Value) {
    let r = reqwest::Client::new()
        .post(format!("{}/graphql", fake.url()))
        .bearer_auth(FAKE_TOKEN)
        .json(&json!({"query": query, "variables": vars}))
        .send()
        .await
        .unwrap();
    let status = r.status().as_u16();
    (status, r.json().await.unwrap_or(Value::Null))
}

/// A REST GET with `token`, conditional on `etag` when there is one.
async fn get_rest(url: &str, token: &str, etag: Option<&str>) -> reqwest::Response {
    let mut request = reqwest::Client::new().get(url).bearer_auth(token);
    if let Some(etag) = etag {
        request = request.header("if-none-match", etag);
    }
    request.send().await.unwrap()
}

/// Asks for an installation token with `jwt`.
async fn request_token(fake: &GithubFake, installation: u64, jwt: &str) -> reqwest::Response {
    reqwest::Client::new()
        .post(format!(
            "{}/app/installations/{installation}/access_tokens",
            fake.url()
        ))
        .bearer_auth(jwt)
        .send()
        .await
        .unwrap()
}

#[tokio::test]
async fn pages_repositories_with_blobs_and_rate_limit() {
    let org = Org::generate(&OrgSpec::small());
    let fake = GithubFake::start(vec![org.clone()]).await.unwrap();
    let mut after = Value::Null;
    let mut seen = Vec::new();
    loop {
        let (status, body) = post(
            &fake,
            REPOS,
            json!({"login": "acme", "first": 15, "after": after}),
        )
        .await;
        assert_eq!(status, 200);
        let conn = &body["data"]["organization"]["repositories"];
        for node in conn["nodes"].as_array().unwrap() {
            seen.push(node["name"].as_str().unwrap().to_string());
            let repo = org.repos.iter().find(|r| r.name == node["name"]).unwrap();
            assert_eq!(
                node["codeowners"]["text"].as_str(),
                repo.files.get(".github/CODEOWNERS").map(String::as_str)
            );
            assert_eq!(
                node["cargo"]["text"].as_str(),
                repo.files.get("Cargo.toml").map(String::as_str)
            );
        }
        assert!(body["data"]["rateLimit"]["remaining"].as_u64().unwrap() < 5000);
        if !conn["pageInfo"]["hasNextPage"].as_bool().unwrap() {
            break;
        }
        after = conn["pageInfo"]["endCursor"].clone();
    }
    assert_eq!(seen.len(), org.repos.len());
    assert_eq!(fake.stats().by_target["graphql:repositories"], 3);

    let (_, body) = post(&fake, REPOS, json!({"login": "acme", "first": 101})).await;
    assert_eq!(body["errors"][0]["type"], "EXCESSIVE_PAGINATION");
    let (_, body) = post(&fake, REPOS, json!({"login": "nope", "first": 10})).await;
    assert_eq!(body["errors"][0]["type"], "NOT_FOUND");
    assert!(body["data"]["organization"].is_null());
}

#[tokio::test]
async fn rest_members_page_by_link_and_answer_304_to_etags() {
    let org = Org::generate(&OrgSpec::small());
    let fake = GithubFake::start(vec![org.clone()]).await.unwrap();
    let mut url = format!("{}/orgs/acme/members?per_page=8", fake.url());
    let mut logins = Vec::new();
    let mut etags = Vec::new();
    loop {
        let r = get_rest(&url, FAKE_TOKEN, None).await;
        assert_eq!(r.status(), 200);
        etags.push((
            url.clone(),
            r.headers()["etag"].to_str().unwrap().to_string(),
        ));
        let next = r.headers().get("link").and_then(|l| {
            l.to_str()
                .unwrap()
                .split(',')
                .find(|p| p.contains("rel=\"next\""))
                .map(|p| {
                    p.trim()
                        .trim_start_matches('<')
                        .split('>')
                        .next()
                        .unwrap()
                        .to_string()
                })
        });
        let page: Vec<Value> = r.json().await.unwrap();
        logins.extend(
            page.iter()
                .map(|u| u["login"].as_str().unwrap().to_string()),
        );
        match next {
            Some(n) => url = n,
            None => break,
        }
    }
    assert_eq!(logins.len(), org.people.len());
    for (url, etag) in &etags {
        let r = get_rest(url, FAKE_TOKEN, Some(etag)).await;
        assert_eq!(r.status(), 304);
    }
    assert_eq!(fake.stats().rest_not_modified, etags.len() as u64);
    fake.with_org("acme", |o| o.remove_person(0));
    let r = get_rest(&etags[0].0, FAKE_TOKEN, Some(&etags[0].1)).await;
    assert_eq!(r.status(), 200, "a changed page has a new ETag");

    let r = reqwest::Client::new()
        .get(format!("{}/orgs/acme/members", fake.url()))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 401);
}

#[tokio::test]
async fn faults_apply_to_their_target_after_skip_and_for_times() {
    let fake = GithubFake::start(vec![Org::generate(&OrgSpec::small())])
        .await
        .unwrap();
    fake.add_fault(
        Fault::new("graphql:repositories", FaultAction::Status(502))
            .skip(1)
            .times(1),
    );
    fake.add_fault(Fault::new("graphql:teams", FaultAction::BadJson));
    let vars = json!({"login": "acme", "first": 10});
    assert_eq!(post(&fake, REPOS, vars.clone()).await.0, 200);
    assert_eq!(post(&fake, REPOS, vars.clone()).await.0, 502);
    assert_eq!(post(&fake, REPOS, vars.clone()).await.0, 200);
    let teams = "query($login: String!) { organization(login: $login) { teams(first: 5) { nodes { slug } } } }";
    let (status, body) = post(&fake, teams, json!({"login": "acme"})).await;
    assert_eq!((status, body), (200, Value::Null), "HTML, not JSON");
    assert_eq!(fake.stats().faults, 2);

    fake.clear_faults();
    fake.add_fault(Fault::new("graphql:repositories", FaultAction::Status(502)).min_page(50));
    assert_eq!(
        post(&fake, REPOS, json!({"login": "acme", "first": 60}))
            .await
            .0,
        502
    );
    assert_eq!(
        post(&fake, REPOS, json!({"login": "acme", "first": 30}))
            .await
            .0,
        200
    );
}

#[tokio::test]
async fn a_spent_quota_is_refused_until_reset() {
    let fake = GithubFake::start(vec![Org::generate(&OrgSpec::small())])
        .await
        .unwrap();
    fake.set_graphql_quota(2, Duration::from_secs(3600));
    let vars = json!({"login": "acme", "first": 10});
    assert!(post(&fake, REPOS, vars.clone()).await.1["errors"].is_null());
    let (_, body) = post(&fake, REPOS, vars.clone()).await;
    assert_eq!(body["data"]["rateLimit"]["remaining"], 0);
    let (_, body) = post(&fake, REPOS, vars).await;
    assert_eq!(body["errors"][0]["type"], "RATE_LIMITED");
    assert_eq!(fake.stats().rate_limited, 1);
}

#[tokio::test]
async fn installation_tokens_need_a_jwt_for_the_app() {
    let fake = GithubFake::start(vec![Org::generate(&OrgSpec::small())])
        .await
        .unwrap();
    fake.set_app(FakeApp {
        app_id: 42,
        installation_id: 7,
    });
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs();
    let claims = URL_SAFE_NO_PAD.encode(
        serde_json::to_vec(&json!({"iss": "42", "iat": now - 60, "exp": now + 540})).unwrap(),
    );
    let jwt = format!("eyJhbGciOiJSUzI1NiJ9.{claims}.c2lnbmF0dXJl");
    let r = request_token(&fake, 7, &jwt).await;
    assert_eq!(r.status(), 201);
    let token: Value = r.json().await.unwrap();
    let token = token["token"].as_str().unwrap().to_string();
    let r = get_rest(
        &format!("{}/users/ada-lovelace-0", fake.url()),
        &token,
        None,
    )
    .await;
    assert_ne!(r.status(), 401, "the issued token is accepted");
    let r = request_token(&fake, 8, &jwt).await;
    assert_eq!(r.status(), 404);
    let r = request_token(&fake, 7, "not.a.jwt").await;
    assert_eq!(r.status(), 401);
}

#[test]
fn dates_are_rfc3339() {
    assert_eq!(chrono_like(0), "1970-01-01T00:00:00Z");
    assert_eq!(chrono_like(1_700_000_000), "2023-11-14T22:13:20Z");
}
