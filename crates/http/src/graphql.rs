//! GraphQL over the client: the request (a POST whose failures a smaller request may avoid are
//! retried only when asked), and the answer's envelope, errors and page info.

use reqwest::Method;
use reqwest::header::{CONTENT_TYPE, HeaderMap, HeaderValue};
use serde::Deserialize;
use serde_json::{Value, json};

use crate::{HttpClient, HttpError, Response, redact};

impl HttpClient {
    /// One GraphQL request. Failures a smaller page or batch may avoid (gateway and client
    /// timeouts) are retried here only with `retry_big`, when the request cannot be smaller.
    pub async fn graphql(
        &self,
        url: &str,
        mut headers: HeaderMap,
        query: &str,
        variables: &Value,
        retry_big: bool,
    ) -> Result<Response, HttpError> {
        let body =
            serde_json::to_vec(&json!({"query": query, "variables": variables})).map_err(|e| {
                HttpError::Invalid {
                    url: redact(url),
                    message: e.to_string(),
                }
            })?;
        headers.insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
        self.send_when(Method::POST, url, headers, Some(body.into()), |e| {
            e.is_retryable() && (retry_big || !e.may_pass_smaller())
        })
        .await
    }
}

/// A GraphQL answer: its data, and the errors beside (or instead of) it.
#[derive(Debug, Deserialize)]
pub struct GraphqlResponse<T> {
    pub data: Option<T>,
    #[serde(default)]
    pub errors: Vec<GraphqlError>,
}

#[derive(Debug, Deserialize)]
pub struct GraphqlError {
    /// GitHub's error type (`NOT_FOUND`, `RATE_LIMITED`).
    #[serde(rename = "type")]
    pub kind: Option<String>,
    /// Sent beside `type` by GitHub since 2025 (`graphql_rate_limit`).
    pub code: Option<String>,
    pub message: String,
    /// Where in the answer the error sits: `["organization"]`, or deeper inside a node
    /// (`["projects", "nodes", 3, "repository"]`).
    #[serde(default)]
    pub path: Vec<Value>,
}

impl GraphqlError {
    pub fn depth(&self) -> usize {
        self.path.len()
    }

    /// The index of the node the error is about, when it is inside `<field>.nodes[i]`.
    pub fn node_index(&self) -> Option<usize> {
        match self.path.as_slice() {
            [_, Value::String(nodes), Value::Number(i), ..] if nodes == "nodes" => {
                i.as_u64().map(|i| i as usize)
            }
            _ => None,
        }
    }
}

impl std::fmt::Display for GraphqlError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        if self.path.is_empty() {
            return f.write_str(&self.message);
        }
        let path: Vec<String> = self
            .path
            .iter()
            .map(|p| match p {
                Value::String(s) => s.clone(),
                other => other.to_string(),
            })
            .collect();
        if let Some(kind) = &self.kind {
            write!(f, "{kind} ")?;
        }
        write!(f, "at {}: {}", path.join("."), self.message)
    }
}

/// A connection's `pageInfo`.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PageInfo {
    pub has_next_page: bool,
    pub end_cursor: Option<String>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn errors_know_their_node_and_say_where() {
        let e: GraphqlError = serde_json::from_value(json!({
            "message": "Deadline Exceeded", "path": ["projects", "nodes", 3, "repository"]
        }))
        .unwrap();
        assert_eq!(e.node_index(), Some(3));
        assert_eq!(
            e.to_string(),
            "at projects.nodes.3.repository: Deadline Exceeded"
        );
        let top: GraphqlError = serde_json::from_value(json!({"message": "complexity"})).unwrap();
        assert_eq!(top.node_index(), None);
        assert_eq!(top.to_string(), "complexity");
        let typed: GraphqlError = serde_json::from_value(json!({
            "type": "FORBIDDEN", "message": "SAML", "path": ["organization", "repositories", "nodes", 2]
        }))
        .unwrap();
        assert_eq!(typed.depth(), 4);
        assert_eq!(
            typed.to_string(),
            "FORBIDDEN at organization.repositories.nodes.2: SAML"
        );
    }
}
