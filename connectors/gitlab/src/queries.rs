//! What the connector asks GitLab and the shapes of the answers: REST groups, projects and
//! members, and the GraphQL documents that read many projects' files (or users) per request.

use serde::Deserialize;
use surveyor_http::PageInfo;
use surveyor_repofiles::forge::Files;

/// Files read from each project's default branch: GitLab's CODEOWNERS locations, the
/// descriptor, and the root manifests.
pub const FILES: &[&str] = &[
    "CODEOWNERS",
    "docs/CODEOWNERS",
    ".gitlab/CODEOWNERS",
    "catalog-info.yaml",
    "catalog-info.yml",
    "Cargo.toml",
    "package.json",
    "go.mod",
    "pyproject.toml",
    "requirements.txt",
    "pom.xml",
];

/// The files and languages of up to 100 projects by global id. `blobs` without `ref` reads the
/// default branch (HEAD); `rawTextBlob` is null for binary files.
pub const PROJECT_FILES: &str = r#"query ProjectFiles($ids: [ID!], $paths: [String!]!, $first: Int, $after: String) {
  projects(ids: $ids, first: $first, after: $after) {
    pageInfo { hasNextPage endCursor }
    nodes {
      id
      languages { name share }
      repository {
        blobs(paths: $paths) { nodes { path rawTextBlob } }
      }
    }
  }
}"#;

/// Up to 100 users by global id, for what member lists leave out (the public email).
pub const USERS: &str = r#"query Users($ids: [ID!], $first: Int, $after: String) {
  users(ids: $ids, first: $first, after: $after) {
    pageInfo { hasNextPage endCursor }
    nodes { id username name publicEmail state }
  }
}"#;

pub fn project_gid(id: u64) -> String {
    format!("gid://gitlab/Project/{id}")
}

pub fn group_gid(id: u64) -> String {
    format!("gid://gitlab/Group/{id}")
}

pub fn user_gid(id: u64) -> String {
    format!("gid://gitlab/User/{id}")
}

/// The number at the end of a global id (`gid://gitlab/Project/42` -> 42).
pub fn gid_number(gid: &str) -> Option<u64> {
    gid.rsplit('/').next()?.parse().ok()
}

// ---------------------------------------------------------------------------------------------
// REST

/// `GET /groups/:id` and the items of `/groups/:id/descendant_groups`.
#[derive(Debug, Clone, Deserialize)]
pub struct RestGroup {
    pub id: u64,
    pub name: String,
    pub full_path: String,
    pub description: Option<String>,
    pub parent_id: Option<u64>,
    pub web_url: Option<String>,
}

/// An item of `/groups/:id/projects`.
#[derive(Debug, Clone, Deserialize)]
pub struct RestProject {
    pub id: u64,
    pub name: String,
    pub path: String,
    pub path_with_namespace: String,
    pub description: Option<String>,
    pub web_url: String,
    pub default_branch: Option<String>,
    #[serde(default)]
    pub topics: Vec<String>,
    /// `topics` before GitLab 14.0.
    #[serde(default)]
    pub tag_list: Vec<String>,
    #[serde(default)]
    pub archived: bool,
    pub visibility: Option<String>,
    pub forked_from_project: Option<serde_json::Value>,
    /// Set while a project waits out delayed deletion (GitLab Premium and GitLab.com).
    pub marked_for_deletion_on: Option<String>,
    pub marked_for_deletion_at: Option<String>,
}

impl RestProject {
    pub fn topics(&self) -> Vec<String> {
        let list = if self.topics.is_empty() {
            &self.tag_list
        } else {
            &self.topics
        };
        list.iter().map(|t| t.to_lowercase()).collect()
    }

    pub fn is_fork(&self) -> bool {
        self.forked_from_project
            .as_ref()
            .is_some_and(|v| !v.is_null())
    }

    pub fn pending_deletion(&self) -> bool {
        self.marked_for_deletion_on.is_some() || self.marked_for_deletion_at.is_some()
    }
}

/// An item of `/groups/:id/members` (or `/members/all`).
#[derive(Debug, Clone, Deserialize)]
pub struct RestMember {
    pub id: u64,
    pub username: String,
    pub name: Option<String>,
    pub state: Option<String>,
    pub access_level: u64,
}

/// `Gitlab::Access` levels by name, for annotations people can read.
pub fn access_level_name(level: u64) -> String {
    match level {
        0 => "no-access".into(),
        5 => "minimal-access".into(),
        10 => "guest".into(),
        15 => "planner".into(),
        20 => "reporter".into(),
        30 => "developer".into(),
        40 => "maintainer".into(),
        50 => "owner".into(),
        60 => "admin".into(),
        other => other.to_string(),
    }
}

// ---------------------------------------------------------------------------------------------
// GraphQL

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Connection<T> {
    pub page_info: Option<PageInfo>,
    #[serde(default = "Vec::new")]
    pub nodes: Vec<Option<T>>,
}

#[derive(Debug, Clone, Deserialize)]
pub struct LanguageNode {
    pub name: String,
    pub share: Option<f64>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct BlobNode {
    pub path: String,
    /// Null for binary files.
    pub raw_text_blob: Option<String>,
}

#[derive(Debug, Clone, Deserialize)]
pub struct BlobList {
    #[serde(default)]
    pub nodes: Vec<Option<BlobNode>>,
}

#[derive(Debug, Clone, Deserialize)]
pub struct RepositoryNode {
    pub blobs: Option<BlobList>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ProjectNode {
    pub id: String,
    pub languages: Option<Vec<LanguageNode>>,
    /// Null when the repository is disabled or not readable.
    pub repository: Option<RepositoryNode>,
}

impl ProjectNode {
    /// The project's files by path, as read: the text, or `None` for a binary file.
    pub fn files(&self) -> Files {
        Files(
            self.repository
                .iter()
                .flat_map(|r| r.blobs.iter())
                .flat_map(|b| b.nodes.iter().flatten())
                .map(|b| (b.path.clone(), b.raw_text_blob.clone()))
                .collect(),
        )
    }
}

/// The language with the largest share.
pub fn primary_language(node: &ProjectNode) -> Option<String> {
    node.languages
        .iter()
        .flatten()
        .max_by(|a, b| {
            a.share
                .unwrap_or(0.0)
                .partial_cmp(&b.share.unwrap_or(0.0))
                .unwrap_or(std::cmp::Ordering::Equal)
        })
        .map(|l| l.name.clone())
}

#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct UserNode {
    pub id: String,
    pub username: String,
    pub name: Option<String>,
    /// Empty or null when the user shows none.
    pub public_email: Option<String>,
    pub state: Option<String>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn files_and_languages_come_from_the_node() {
        let node: ProjectNode = serde_json::from_value(serde_json::json!({
            "id": "gid://gitlab/Project/7",
            "languages": [{"name": "Go", "share": 20.5}, {"name": "Rust", "share": 79.5}],
            "repository": {"blobs": {"nodes": [
                {"path": "CODEOWNERS", "rawTextBlob": "* @a"},
                {"path": "logo.png", "rawTextBlob": null}
            ]}}
        }))
        .unwrap();
        let files = node.files();
        assert_eq!(files.text("CODEOWNERS"), Some("* @a"));
        assert!(files.unreadable("logo.png") && files.text("logo.png").is_none());
        assert!(!files.unreadable("go.mod"));
        assert_eq!(primary_language(&node).as_deref(), Some("Rust"));
        assert_eq!(gid_number(&node.id), Some(7));
    }
}
