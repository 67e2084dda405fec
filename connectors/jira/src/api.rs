//! Jira's REST API as the connector uses it: the JSON shapes it reads (Cloud v3 and Data Center
//! v2 alike), the requests for projects and components, and both pagination styles.

use std::sync::Arc;

use serde::de::DeserializeOwned;
use serde::{Deserialize, Deserializer};
use surveyor_http::{HeaderMap, HeaderValue, HttpClient, HttpError, secret_header};

use crate::config::{Flavor, Settings};

/// A Jira id. Jira sends ids as strings (`"10000"`) but some fields (`projectId`) as numbers;
/// both are read as the same string.
fn id<'de, D: Deserializer<'de>>(d: D) -> Result<String, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum Raw {
        Text(String),
        Number(u64),
    }
    Ok(match Raw::deserialize(d)? {
        Raw::Text(s) => s,
        Raw::Number(n) => n.to_string(),
    })
}

/// A Cloud page (`PageBean`): `startAt`, `maxResults`, `total`, `isLast`, `values`.
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Page<T> {
    #[serde(default)]
    pub start_at: u64,
    pub max_results: Option<u64>,
    pub total: Option<u64>,
    pub is_last: Option<bool>,
    #[serde(default = "Vec::new")]
    pub values: Vec<T>,
}

/// A person as Jira embeds them (`lead`). Cloud identifies people by `accountId` (and sends
/// `key`/`name` empty or not at all); Data Center by `key` and `name` (the username). The
/// email is there only when the person's privacy settings show it.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct JiraUser {
    pub account_id: Option<String>,
    pub key: Option<String>,
    pub name: Option<String>,
    pub display_name: Option<String>,
    pub email_address: Option<String>,
    /// `false` for a deactivated account.
    pub active: Option<bool>,
}

fn non_empty(v: &Option<String>) -> Option<&str> {
    v.as_deref().map(str::trim).filter(|s| !s.is_empty())
}

impl JiraUser {
    pub fn account_id(&self) -> Option<&str> {
        non_empty(&self.account_id)
    }
    pub fn key(&self) -> Option<&str> {
        non_empty(&self.key)
    }
    pub fn username(&self) -> Option<&str> {
        non_empty(&self.name)
    }
    pub fn display_name(&self) -> Option<&str> {
        non_empty(&self.display_name)
    }
    pub fn email(&self) -> Option<&str> {
        non_empty(&self.email_address)
    }

    /// The id Jira knows the person by: the account id on Cloud, the user key on Data Center.
    pub fn jira_id(&self) -> Option<&str> {
        self.account_id().or_else(|| self.key())
    }
}

/// A project category.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Category {
    #[serde(deserialize_with = "id")]
    pub id: String,
    pub name: String,
    pub description: Option<String>,
}

/// A project, with `lead` and `description` when asked for with `expand=lead,description`.
/// Both flavors leave archived projects out unless asked (we do not ask): an archived project's
/// System goes, as a deleted project's would.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Project {
    #[serde(deserialize_with = "id")]
    pub id: String,
    pub key: String,
    pub name: String,
    pub description: Option<String>,
    pub lead: Option<JiraUser>,
    pub project_category: Option<Category>,
}

/// A project component (Cloud's paged `ComponentWithIssueCount` and the plain one alike).
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Component {
    #[serde(deserialize_with = "id")]
    pub id: String,
    pub name: String,
    pub description: Option<String>,
    pub lead: Option<JiraUser>,
    /// Data Center archives components and still lists them.
    #[serde(default)]
    pub archived: bool,
}

/// Why a request did not give what was asked for. Never carries credentials: the http crate's
/// errors name the URL without its query, and headers never appear.
#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    #[error("{path}: {}", describe(.source))]
    Http {
        path: String,
        #[source]
        source: HttpError,
    },
    #[error("{path}: unexpected answer: {message}")]
    Decode { path: String, message: String },
    #[error("{path}: the page at startAt={start} was empty but did not say it was the last")]
    EmptyPage { path: String, start: u64 },
    #[error("{path}: the last page came after {read} of {total}; the rest was not read")]
    EndedEarly { path: String, read: u64, total: u64 },
    #[error("the requests for project {project} ended abnormally")]
    Aborted { project: String },
}

impl ApiError {
    /// The credentials were refused (or may not see the site): nothing read can be trusted
    /// to be the whole.
    pub fn is_denied(&self) -> bool {
        matches!(self, Self::Http { source, .. } if matches!(source.status(), Some(401 | 403)))
    }

    pub fn is_not_found(&self) -> bool {
        matches!(self, Self::Http { source, .. } if source.status() == Some(404))
    }
}

/// `HTTP 401: <Jira's errorMessages>`, `HTTP 429 (gave up after 3 attempts): ...`, `timed out`.
fn describe(e: &HttpError) -> String {
    match e {
        HttpError::Status { status, detail, .. } => {
            let detail = detail.as_deref().map(jira_messages).unwrap_or_default();
            if detail.is_empty() {
                format!("HTTP {status}")
            } else {
                format!("HTTP {status}: {detail}")
            }
        }
        HttpError::Exhausted { attempts, last, .. } => {
            format!("{} (gave up after {attempts} attempts)", describe(last))
        }
        HttpError::Timeout { .. } => "timed out".into(),
        HttpError::Connect { message, .. } => format!("connection failed: {message}"),
        HttpError::Invalid { message, .. } => format!("invalid request: {message}"),
    }
}

/// Jira's error bodies are `{"errorMessages": [...], "errors": {field: message}}`; say the
/// messages, or the body as it came when it is something else.
fn jira_messages(body: &str) -> String {
    #[derive(Deserialize)]
    #[serde(rename_all = "camelCase")]
    struct ErrorBody {
        #[serde(default)]
        error_messages: Vec<String>,
        #[serde(default)]
        errors: std::collections::BTreeMap<String, String>,
    }
    match serde_json::from_str::<ErrorBody>(body) {
        Ok(b) if !b.error_messages.is_empty() || !b.errors.is_empty() => b
            .error_messages
            .into_iter()
            .chain(b.errors.into_iter().map(|(k, v)| format!("{k}: {v}")))
            .collect::<Vec<_>>()
            .join("; "),
        _ => body.trim().to_string(),
    }
}

/// The requests of one site; cheap to clone (clones share the client, its limits and counters).
#[derive(Clone)]
pub struct Api {
    http: HttpClient,
    headers: HeaderMap,
    settings: Arc<Settings>,
}

impl Api {
    pub fn new(settings: Arc<Settings>) -> Result<Self, HttpError> {
        // Jira's project and component lists carry no validators worth caching.
        let http = HttpClient::new(settings.http.clone(), None)?;
        let mut headers = HeaderMap::new();
        let auth =
            secret_header(&settings.auth.header_value()).ok_or_else(|| HttpError::Invalid {
                url: String::new(),
                message: "the credentials have characters a header cannot carry".into(),
            })?;
        headers.insert("authorization", auth);
        headers.insert("accept", HeaderValue::from_static("application/json"));
        Ok(Self {
            http,
            headers,
            settings,
        })
    }

    pub fn http(&self) -> &HttpClient {
        &self.http
    }

    /// Every project the credentials can see, with lead, description and category.
    pub async fn projects(&self) -> Listed<Project> {
        match self.settings.flavor {
            Flavor::Cloud => {
                self.paged("/rest/api/3/project/search", "expand=lead,description")
                    .await
            }
            // Data Center answers the whole list at once, as a bare array.
            Flavor::Datacenter => self
                .get("/rest/api/2/project?expand=lead,description")
                .await
                .into(),
        }
    }

    /// Every component of one project (by id, which survives key changes).
    pub async fn components(&self, project_id: &str) -> Listed<Component> {
        match self.settings.flavor {
            Flavor::Cloud => {
                self.paged(&format!("/rest/api/3/project/{project_id}/component"), "")
                    .await
            }
            Flavor::Datacenter => self
                .get(&format!("/rest/api/2/project/{project_id}/components"))
                .await
                .into(),
        }
    }

    /// One project by id or key, with lead and description as the list has them, and whether
    /// it is archived (the list leaves archived projects out).
    pub async fn project(&self, id_or_key: &str) -> Result<(Project, bool), ApiError> {
        #[derive(Deserialize)]
        struct One {
            #[serde(flatten)]
            project: Project,
            #[serde(default)]
            archived: bool,
        }
        let version = self.version();
        let one: One = self
            .get(&format!(
                "/rest/api/{version}/project/{id_or_key}?expand=lead,description"
            ))
            .await?;
        Ok((one.project, one.archived))
    }

    /// Every component of one project in one request (the unpaged list both flavors serve).
    pub async fn all_components(&self, project_id: &str) -> Result<Vec<Component>, ApiError> {
        let version = self.version();
        self.get(&format!(
            "/rest/api/{version}/project/{project_id}/components"
        ))
        .await
    }

    fn version(&self) -> u8 {
        match self.settings.flavor {
            Flavor::Cloud => 3,
            Flavor::Datacenter => 2,
        }
    }

    async fn get<T: DeserializeOwned>(&self, path_and_query: &str) -> Result<T, ApiError> {
        let url = format!("{}{path_and_query}", self.settings.base_url);
        let path = path_and_query
            .split('?')
            .next()
            .unwrap_or(path_and_query)
            .to_string();
        let response = self
            .http
            .get(&url, self.headers.clone())
            .await
            .map_err(|source| ApiError::Http {
                path: path.clone(),
                source,
            })?;
        response.json().map_err(|e| ApiError::Decode {
            path,
            message: e.to_string(),
        })
    }

    /// Every item of a Cloud `PageBean` list, or the pages read before one failed. The next
    /// page starts after what this page actually held: Jira may return fewer than asked for.
    async fn paged<T: DeserializeOwned>(&self, path: &str, query: &str) -> Listed<T> {
        let mut items = Vec::new();
        let mut start: u64 = 0;
        loop {
            let sep = if query.is_empty() { "" } else { "&" };
            let page: Page<T> = match self
                .get(&format!(
                    "{path}?startAt={start}&maxResults={}{sep}{query}",
                    self.settings.page_size
                ))
                .await
            {
                Ok(p) => p,
                Err(e) => return Listed::cut(items, e),
            };
            let got = page.values.len() as u64;
            items.extend(page.values);
            let next = start + got;
            let last = match (page.is_last, page.total) {
                (Some(is_last), _) => is_last,
                (None, Some(total)) => next >= total,
                // Neither: a short page is the last one.
                (None, None) => page.max_results.is_none_or(|m| got < m),
            };
            if last {
                // A last page short of the total: the list was cut (or shrank while it was
                // read), and what is missing must not read as deleted.
                if let Some(total) = page.total.filter(|t| next < *t) {
                    let e = ApiError::EndedEarly {
                        path: path.to_string(),
                        read: next,
                        total,
                    };
                    return Listed::cut(items, e);
                }
                return Listed { items, error: None };
            }
            if got == 0 {
                // More was promised but nothing came: asking again would loop forever.
                let e = ApiError::EmptyPage {
                    path: path.to_string(),
                    start,
                };
                return Listed::cut(items, e);
            }
            start = next;
        }
    }
}

/// A list as far as it could be read: everything, or what came before `error`.
#[derive(Debug)]
pub struct Listed<T> {
    pub items: Vec<T>,
    pub error: Option<ApiError>,
}

impl<T> Listed<T> {
    fn cut(items: Vec<T>, error: ApiError) -> Self {
        Self {
            items,
            error: Some(error),
        }
    }
}

impl<T> From<Result<Vec<T>, ApiError>> for Listed<T> {
    fn from(r: Result<Vec<T>, ApiError>) -> Self {
        match r {
            Ok(items) => Self { items, error: None },
            Err(e) => Self::cut(Vec::new(), e),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_come_as_strings_or_numbers() {
        let c: Component =
            serde_json::from_str(r#"{"id": 10400, "name": "api", "projectId": 10000}"#).unwrap();
        assert_eq!(c.id, "10400");
        let c: Component = serde_json::from_str(r#"{"id": "10400", "name": "api"}"#).unwrap();
        assert_eq!((c.id.as_str(), c.lead, c.archived), ("10400", None, false));
        assert!(serde_json::from_str::<Component>(r#"{"id": null, "name": "x"}"#).is_err());
    }

    #[test]
    fn empty_identity_fields_are_absent() {
        let u: JiraUser = serde_json::from_str(
            r#"{"accountId": "acc-9", "key": "", "name": "", "displayName": "Kim", "active": false}"#,
        )
        .unwrap();
        assert_eq!(
            (u.account_id(), u.key(), u.username()),
            (Some("acc-9"), None, None)
        );
        assert_eq!(u.jira_id(), Some("acc-9"));
        assert_eq!(u.active, Some(false));
        let dc: JiraUser =
            serde_json::from_str(r#"{"key": "JIRAUSER10", "name": "kim", "active": true}"#)
                .unwrap();
        assert_eq!(
            (dc.jira_id(), dc.username()),
            (Some("JIRAUSER10"), Some("kim"))
        );
    }

    #[test]
    fn jira_error_bodies_read_as_their_messages() {
        assert_eq!(
            jira_messages(r#"{"errorMessages": ["No project could be found."], "errors": {}}"#),
            "No project could be found."
        );
        assert_eq!(
            jira_messages(r#"{"errorMessages": [], "errors": {"maxResults": "too big"}}"#),
            "maxResults: too big"
        );
        assert_eq!(jira_messages("<html>Oops</html>"), "<html>Oops</html>");
    }
}
