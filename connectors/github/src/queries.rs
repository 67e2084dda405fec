//! The GraphQL documents the connector sends and the shapes of their answers. Repository pages
//! carry their files (`object(expression: "HEAD:path")`), so one request covers 100 repositories
//! with their CODEOWNERS, descriptor and manifests.

use serde::Deserialize;
use surveyor_http::PageInfo;
use surveyor_repofiles::forge::Files;

/// Files read from each repository's default branch, with the alias each gets in the query.
pub const FILES: &[(&str, &str)] = &[
    ("codeownersGithub", ".github/CODEOWNERS"),
    ("codeownersRoot", "CODEOWNERS"),
    ("codeownersDocs", "docs/CODEOWNERS"),
    ("catalogInfo", "catalog-info.yaml"),
    ("catalogInfoYml", "catalog-info.yml"),
    ("cargoToml", "Cargo.toml"),
    ("packageJson", "package.json"),
    ("goMod", "go.mod"),
    ("pyprojectToml", "pyproject.toml"),
    ("requirementsTxt", "requirements.txt"),
    ("pomXml", "pom.xml"),
];

/// The fields read of each repository, its files included.
fn repository_fields() -> String {
    let mut files = String::new();
    for (alias, path) in FILES {
        files.push_str(&format!(
            "        {alias}: object(expression: \"HEAD:{path}\") {{ ... on Blob {{ text isTruncated }} }}\n"
        ));
    }
    format!(
        r#"        id
        name
        nameWithOwner
        description
        url
        isArchived
        isFork
        visibility
        pushedAt
        primaryLanguage {{ name }}
        repositoryTopics(first: 20) {{ nodes {{ topic {{ name }} }} }}
        defaultBranchRef {{ name }}
{files}"#
    )
}

/// One page of an organisation's repositories with their files.
pub fn repositories_query() -> String {
    format!(
        r#"query Repositories($login: String!, $first: Int!, $after: String) {{
  rateLimit {{ limit cost remaining resetAt }}
  organization(login: $login) {{
    repositories(first: $first, after: $after, orderBy: {{field: CREATED_AT, direction: ASC}}) {{
      totalCount
      pageInfo {{ hasNextPage endCursor }}
      nodes {{
{}      }}
    }}
  }}
}}"#,
        repository_fields()
    )
}

/// Repositories by node id (what events named), with the same fields as a crawl reads.
pub fn repositories_by_id_query() -> String {
    format!(
        r#"query RepositoriesById($ids: [ID!]!) {{
  rateLimit {{ limit cost remaining resetAt }}
  nodes(ids: $ids) {{
    ... on Repository {{
{}    }}
  }}
}}"#,
        repository_fields()
    )
}

/// One page of teams, each with its first page of direct members.
pub const TEAMS: &str = r#"query Teams($login: String!, $first: Int!, $after: String, $members: Int!) {
  rateLimit { limit cost remaining resetAt }
  organization(login: $login) {
    teams(first: $first, after: $after) {
      totalCount
      pageInfo { hasNextPage endCursor }
      nodes {
        id
        slug
        name
        description
        parentTeam { id slug }
        members(first: $members, membership: IMMEDIATE) {
          totalCount
          pageInfo { hasNextPage endCursor }
          nodes { id login name email }
        }
      }
    }
  }
}"#;

/// The rest of one team's direct members, for teams with more than a page.
pub const TEAM_MEMBERS: &str = r#"query TeamMembers($login: String!, $slug: String!, $first: Int!, $after: String) {
  rateLimit { limit cost remaining resetAt }
  organization(login: $login) {
    team(slug: $slug) {
      members(first: $first, after: $after, membership: IMMEDIATE) {
        totalCount
        pageInfo { hasNextPage endCursor }
        nodes { id login name email }
      }
    }
  }
}"#;

#[derive(Debug, Deserialize, Clone, Copy)]
#[serde(rename_all = "camelCase")]
pub struct RateLimit {
    pub limit: u64,
    pub remaining: u64,
    pub reset_at: Option<chrono::DateTime<chrono::Utc>>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct OrgData<T> {
    pub rate_limit: Option<RateLimit>,
    pub organization: Option<T>,
}

/// An answer that may say how the quota stands.
pub trait Rated {
    fn rate_limit(&self) -> Option<RateLimit>;
}

impl<T> Rated for OrgData<T> {
    fn rate_limit(&self) -> Option<RateLimit> {
        self.rate_limit
    }
}

/// The answer to a `nodes(ids:)` query.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct NodesData<T> {
    pub rate_limit: Option<RateLimit>,
    pub nodes: Vec<Option<T>>,
}

impl<T> Rated for NodesData<T> {
    fn rate_limit(&self) -> Option<RateLimit> {
        self.rate_limit
    }
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Connection<T> {
    pub page_info: PageInfo,
    pub nodes: Vec<Option<T>>,
    /// Items in the whole connection: a listing that ends short of it was cut off.
    pub total_count: Option<u64>,
}

#[derive(Debug, Deserialize)]
pub struct Repositories {
    pub repositories: Connection<RepoNode>,
}

#[derive(Debug, Deserialize)]
pub struct Named {
    pub name: String,
}

#[derive(Debug, Deserialize)]
pub struct TopicNode {
    pub topic: Named,
}

#[derive(Debug, Deserialize)]
pub struct Topics {
    pub nodes: Vec<Option<TopicNode>>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RepoNode {
    pub id: String,
    pub name: String,
    pub name_with_owner: String,
    pub description: Option<String>,
    pub url: String,
    pub is_archived: bool,
    pub is_fork: bool,
    pub visibility: Option<String>,
    pub primary_language: Option<Named>,
    pub repository_topics: Option<Topics>,
    pub default_branch_ref: Option<Named>,
    /// The file aliases of [`FILES`] (`null` when the file does not exist), and any field
    /// not named above.
    #[serde(flatten)]
    pub blobs: std::collections::HashMap<String, serde_json::Value>,
}

impl RepoNode {
    pub fn topics(&self) -> Vec<String> {
        self.repository_topics
            .iter()
            .flat_map(|t| t.nodes.iter().flatten())
            .map(|n| n.topic.name.to_lowercase())
            .collect()
    }

    /// The files of [`FILES`] the repository has: their text when GitHub gave it whole, else
    /// `None` (binary, or truncated at GitHub's blob limit).
    pub fn files(&self) -> Files {
        Files(
            FILES
                .iter()
                .filter_map(|(alias, path)| {
                    let blob = self.blobs.get(*alias)?.as_object()?;
                    let text = match (blob.get("text"), blob.get("isTruncated")) {
                        (
                            Some(serde_json::Value::String(t)),
                            None | Some(serde_json::Value::Bool(false)),
                        ) => Some(t.clone()),
                        _ => None,
                    };
                    Some((path.to_string(), text))
                })
                .collect(),
        )
    }
}

#[derive(Debug, Deserialize)]
pub struct Teams {
    pub teams: Connection<TeamNode>,
}

#[derive(Debug, Deserialize)]
pub struct TeamRef {
    pub slug: String,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct TeamNode {
    pub id: String,
    pub slug: String,
    pub name: String,
    pub description: Option<String>,
    pub parent_team: Option<TeamRef>,
    pub members: Connection<UserNode>,
}

#[derive(Debug, Deserialize)]
pub struct OneTeam {
    pub team: Option<TeamMembersNode>,
}

#[derive(Debug, Deserialize)]
pub struct TeamMembersNode {
    pub members: Connection<UserNode>,
}

#[derive(Debug, Deserialize, Clone)]
pub struct UserNode {
    pub login: String,
    pub name: Option<String>,
    /// The public profile email; GitHub sends `""` when hidden.
    pub email: Option<String>,
}

/// A REST simple user (`GET /orgs/{org}/members`).
#[derive(Debug, Deserialize, Clone)]
pub struct RestUser {
    pub login: String,
    pub node_id: String,
    pub name: Option<String>,
    pub email: Option<String>,
}
