//! Talking to the API servers: a client per kubeconfig context (or the pod's service account),
//! lists read `page_size` at a time with `continue` tokens and retried within `max_retries`
//! when the failure may pass, each kind across the cluster or, where that is forbidden,
//! namespace by namespace; single objects read by name (a refresh), and clients for watches.

use std::collections::BTreeMap;
use std::time::Duration;

use k8s_openapi::api::core::v1::Namespace;
use kube::api::{Api, ListParams};
use kube::config::{KubeConfigOptions, Kubeconfig};

use crate::config::{Settings, Source};
use crate::map::{Object, ToObject, namespace_object};

/// How long the API server is asked to keep one watch request open (`timeoutSeconds`); the
/// watch's read timeout waits a little longer, so a quiet watch ends at the server's word.
pub const WATCH_TIMEOUT_SECS: u32 = 290;

/// One cluster's API server, as the connector lists it.
pub struct Cluster {
    client: kube::Client,
    page_size: u32,
    max_retries: u32,
}

impl Cluster {
    /// A client of the cluster of `context` (of `kubeconfig`; in the pod's cluster without one),
    /// with the connector's timeouts and paging.
    pub async fn connect(
        settings: &Settings,
        kubeconfig: Option<&Kubeconfig>,
        context: &str,
    ) -> Result<Self, String> {
        Self::connect_with(settings, kubeconfig, context, settings.timeout).await
    }

    /// A client for watches: a watch request stays open for minutes with nothing to read, so
    /// its read timeout is the watch's own, not the per-request `timeout_secs`.
    pub async fn connect_watching(
        settings: &Settings,
        kubeconfig: Option<&Kubeconfig>,
        context: &str,
    ) -> Result<Self, String> {
        let read = Duration::from_secs(u64::from(WATCH_TIMEOUT_SECS) + 15);
        Self::connect_with(settings, kubeconfig, context, read).await
    }

    async fn connect_with(
        settings: &Settings,
        kubeconfig: Option<&Kubeconfig>,
        context: &str,
        read_timeout: Duration,
    ) -> Result<Self, String> {
        let mut config = match (&settings.source, kubeconfig) {
            (Source::Kubeconfig { .. }, Some(kc)) => {
                let options = KubeConfigOptions {
                    context: Some(context.to_string()),
                    ..KubeConfigOptions::default()
                };
                kube::Config::from_custom_kubeconfig(kc.clone(), &options)
                    .await
                    .map_err(|e| first_line(&e.to_string()))?
            }
            _ => kube::Config::incluster().map_err(|e| first_line(&e.to_string()))?,
        };
        config.connect_timeout = Some(settings.timeout);
        config.read_timeout = Some(read_timeout);
        // kube's own retries (15, backing off towards 1000 s, honouring any Retry-After) would
        // stall a crawl for minutes on a throttled or failing API server; `list_page` retries
        // within `max_retries` instead.
        config.default_retry = false;
        Ok(Self {
            client: kube::Client::try_from(config).map_err(|e| first_line(&e.to_string()))?,
            page_size: settings.page_size,
            max_retries: settings.max_retries,
        })
    }

    pub fn client(&self) -> kube::Client {
        self.client.clone()
    }

    /// One object of kind `K` by name, `None` if the API server says it does not exist (404);
    /// retried like a list page when the failure may pass.
    pub async fn get<K: ToObject>(
        &self,
        namespace: &str,
        name: &str,
    ) -> Result<Option<Object>, String> {
        let api = Api::<K>::namespaced(self.client.clone(), namespace);
        let mut attempt = 0;
        loop {
            match api.get_opt(name).await {
                Ok(found) => return Ok(found.as_ref().map(ToObject::to_object)),
                Err(e) if attempt < self.max_retries && is_transient(&e) => {
                    let Some(wait) = retry_wait(&e, attempt) else {
                        return Err(describe(&e));
                    };
                    attempt += 1;
                    tokio::time::sleep(wait).await;
                }
                Err(e) => return Err(describe(&e)),
            }
        }
    }

    /// Every namespace of the cluster.
    pub async fn namespaces(&self) -> Result<Vec<Object>, ListError> {
        let api = Api::<Namespace>::all(self.client.clone());
        let items = list_all(api, self.page_size, self.max_retries).await?;
        Ok(items.iter().map(namespace_object).collect())
    }

    /// Lists one kind across the cluster, or namespace by namespace when the cluster-wide list
    /// is forbidden. Namespaces that fail are recorded in `failed`; `Err` means the cluster
    /// itself did not answer.
    pub async fn gather<K: ToObject>(
        &self,
        kept: &BTreeMap<String, Object>,
        by_namespace: &mut BTreeMap<String, Vec<Object>>,
        failed: &mut BTreeMap<String, String>,
    ) -> Result<(), String> {
        let (client, page, retries) = (&self.client, self.page_size, self.max_retries);
        match list_all(Api::<K>::all(client.clone()), page, retries).await {
            Ok(items) => {
                for item in &items {
                    let o = item.to_object();
                    if kept.contains_key(&o.namespace) {
                        by_namespace.entry(o.namespace.clone()).or_default().push(o);
                    }
                }
                Ok(())
            }
            Err(ListError::Forbidden(_)) => {
                for ns in kept.keys() {
                    if failed.contains_key(ns) {
                        continue;
                    }
                    match list_all(Api::<K>::namespaced(client.clone(), ns), page, retries).await {
                        Ok(items) => by_namespace
                            .entry(ns.clone())
                            .or_default()
                            .extend(items.iter().map(ToObject::to_object)),
                        Err(ListError::Unreachable(e)) => return Err(e),
                        Err(e) => {
                            failed.insert(ns.clone(), format!("listing {}: {e}", K::PLURAL));
                        }
                    }
                }
                Ok(())
            }
            Err(e) => Err(format!("listing {}: {e}", K::PLURAL)),
        }
    }
}

/// Why a list failed.
#[derive(Debug, thiserror::Error)]
pub enum ListError {
    #[error("forbidden: {0}")]
    Forbidden(String),
    /// The API server answered with another error: this list failed, the cluster is up.
    #[error("{0}")]
    Api(String),
    /// No answer from the API server (refused, timed out, TLS): the cluster is unreachable.
    #[error("{0}")]
    Unreachable(String),
}

async fn list_all<K>(api: Api<K>, limit: u32, retries: u32) -> Result<Vec<K>, ListError>
where
    K: kube::Resource<DynamicType = ()> + Clone + std::fmt::Debug + serde::de::DeserializeOwned,
{
    let mut restarted = false;
    'list: loop {
        let mut items = Vec::new();
        let mut token: Option<String> = None;
        loop {
            let mut params = ListParams::default().limit(limit);
            if let Some(t) = &token {
                params = params.continue_token(t);
            }
            match list_page(&api, &params, retries).await {
                Ok(list) => {
                    items.extend(list.items);
                    match list.metadata.continue_.filter(|c| !c.is_empty()) {
                        Some(next) => token = Some(next),
                        // Items said to remain with no token to reach them: a cut list, whose
                        // missing tail must not read as deleted.
                        None => match list.metadata.remaining_item_count.filter(|n| *n > 0) {
                            Some(left) => {
                                return Err(ListError::Api(format!(
                                    "the list ended with {left} items remaining and no continue token"
                                )));
                            }
                            None => return Ok(items),
                        },
                    }
                }
                Err(kube::Error::Api(status)) if status.code == 410 && !restarted => {
                    tracing::info!(
                        kind = %K::plural(&()),
                        "continue token expired; listing again from the start"
                    );
                    restarted = true;
                    continue 'list;
                }
                Err(kube::Error::Api(status)) if status.code == 403 => {
                    return Err(ListError::Forbidden(status.message.clone()));
                }
                Err(kube::Error::Api(status)) => {
                    return Err(ListError::Api(format!(
                        "HTTP {} {}: {}",
                        status.code, status.reason, status.message
                    )));
                }
                Err(e) => return Err(ListError::Unreachable(error_chain(&e))),
            }
        }
    }
}

/// The longest wait between two attempts at a page, the server's `retryAfterSeconds` included;
/// a server that asks for longer gets the failure reported instead.
const MAX_RETRY_WAIT: Duration = Duration::from_secs(60);

/// One page, tried again after failures that may pass (429, 5xx, no answer) at most `retries`
/// more times, waiting what a 429 asks (`retryAfterSeconds`) or 0.5 s doubling to 8 s.
async fn list_page<K>(
    api: &Api<K>,
    params: &ListParams,
    retries: u32,
) -> Result<kube::core::ObjectList<K>, kube::Error>
where
    K: kube::Resource<DynamicType = ()> + Clone + std::fmt::Debug + serde::de::DeserializeOwned,
{
    let mut attempt = 0;
    loop {
        match api.list(params).await {
            Err(e) if attempt < retries && is_transient(&e) => {
                let Some(wait) = retry_wait(&e, attempt) else {
                    return Err(e);
                };
                attempt += 1;
                tracing::debug!(kind = %K::plural(&()), error = %first_line(&e.to_string()), wait_ms = wait.as_millis() as u64, "retrying a list page");
                tokio::time::sleep(wait).await;
            }
            other => return other,
        }
    }
}

/// How long to wait before attempt `attempt + 1`: what a 429 asks (`retryAfterSeconds`) or
/// 0.5 s doubling to 8 s; `None` when the server asks for more than [`MAX_RETRY_WAIT`].
fn retry_wait(e: &kube::Error, attempt: u32) -> Option<Duration> {
    let asked = match e {
        kube::Error::Api(s) => s
            .details
            .as_ref()
            .map(|d| Duration::from_secs(u64::from(d.retry_after_seconds)))
            .filter(|w| !w.is_zero()),
        _ => None,
    };
    let wait = asked.unwrap_or(Duration::from_millis(500 << attempt.min(4)));
    (wait <= MAX_RETRY_WAIT).then_some(wait)
}

/// A failed request in one line: the API server's status, or why there was no answer.
pub fn describe(e: &kube::Error) -> String {
    match e {
        kube::Error::Api(status) => {
            format!("HTTP {} {}: {}", status.code, status.reason, status.message)
        }
        other => error_chain(other),
    }
}

/// Failures another attempt may not meet: throttling, server errors, no answer at all.
fn is_transient(e: &kube::Error) -> bool {
    match e {
        kube::Error::Api(s) => matches!(s.code, 429 | 500 | 502 | 503 | 504),
        kube::Error::HyperError(_) | kube::Error::Service(_) => true,
        _ => false,
    }
}

/// An error and its causes in one line (`ServiceError: client error: operation timed out`):
/// the top of kube's errors alone often hides what happened.
fn error_chain(e: &dyn std::error::Error) -> String {
    let mut parts = vec![first_line(&e.to_string())];
    let mut cause = e.source();
    while let Some(c) = cause {
        let line = first_line(&c.to_string());
        if parts.last().is_none_or(|last| !last.contains(&line)) {
            parts.push(line);
        }
        cause = c.source();
    }
    parts.join(": ")
}

pub fn first_line(s: &str) -> String {
    s.lines().next().unwrap_or_default().to_string()
}
