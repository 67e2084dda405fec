//! `[[connectors]] kind = "kubernetes"`: which clusters (kubeconfig contexts or in-cluster),
//! which namespaces, which resources, and which labels name components and owners.

use std::path::{Path, PathBuf};

use globset::{GlobBuilder, GlobSet, GlobSetBuilder};
use serde::Deserialize;
use surveyor_model::ConfigError;
use surveyor_model::kit::{default_namespace, ensure, number};

/// Namespaces Kubernetes and its distributions run themselves; skipped unless asked for.
pub const SYSTEM_NAMESPACES: &[&str] = &[
    "kube-system",
    "kube-public",
    "kube-node-lease",
    "local-path-storage",
    "gatekeeper-system",
    "cert-manager",
];

/// `[[connectors]] kind = "kubernetes"`.
///
/// ```toml
/// [[connectors]]
/// id = "k8s"
/// kind = "kubernetes"
/// contexts = ["prod", "staging"]      # kubeconfig contexts; or in_cluster = true
/// exclude_namespaces = ["sandbox-*"]
/// owner_keys = ["owner", "team"]
/// ```
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct KubernetesConfig {
    /// Kubeconfig contexts to crawl, each a cluster (its scope prefix is the context name).
    #[serde(default)]
    pub contexts: Vec<String>,
    /// Kubeconfig path, relative to the config file; default `$KUBECONFIG`, then
    /// `~/.kube/config`.
    pub kubeconfig: Option<PathBuf>,
    /// Use the pod's service account instead of a kubeconfig.
    #[serde(default)]
    pub in_cluster: bool,
    /// The cluster's name in scopes and entities when `in_cluster`.
    #[serde(default = "default_cluster_name")]
    pub cluster_name: String,
    /// Namespace globs to crawl (default all) and to skip.
    #[serde(default)]
    pub namespaces: Vec<String>,
    #[serde(default)]
    pub exclude_namespaces: Vec<String>,
    #[serde(default)]
    pub include_system_namespaces: bool,
    /// Also catalogue Ingresses.
    #[serde(default)]
    pub ingresses: bool,
    /// Label, then annotation keys whose value names the owning group, first found wins.
    #[serde(default = "default_owner_keys")]
    pub owner_keys: Vec<String>,
    /// Label keys that name the component, tried after `backstage.io/kubernetes-id` and the
    /// recommended `app.kubernetes.io/name` (`part-of` names the System, `instance` one
    /// installation; list `app.kubernetes.io/instance` here if your charts use it as the name).
    #[serde(default)]
    pub component_keys: Vec<String>,
    /// Each namespace becomes a System its workloads are part of.
    #[serde(default)]
    pub namespace_as_system: bool,
    /// The catalog namespace of the entities created.
    #[serde(default = "default_namespace")]
    pub namespace: String,
    /// Items per list request (`limit`).
    #[serde(default = "number::<_, 500>")]
    pub page_size: u32,
    #[serde(default = "number::<_, 30>")]
    pub timeout_secs: u64,
    /// Attempts after the first for a list page that failed in a way that may pass (429, 5xx,
    /// a timeout, a dropped connection).
    #[serde(default = "number::<_, 3>")]
    pub max_retries: u32,
    /// Follow each cluster's changes with watches while `surveyor serve` runs, and read again
    /// only what changed; the scheduled crawl stays, as a sweep.
    #[serde(default)]
    pub watch: bool,
}

fn default_cluster_name() -> String {
    "in-cluster".into()
}
fn default_owner_keys() -> Vec<String> {
    vec![
        "owner".into(),
        "team".into(),
        "app.kubernetes.io/owner".into(),
    ]
}
fn invalid(key: &'static str, message: impl Into<String>) -> ConfigError {
    ConfigError::new(key, message)
}

/// Where the clusters come from.
#[derive(Debug, Clone)]
pub enum Source {
    /// Contexts of a kubeconfig file (read at start-up; it holds credentials, never logged).
    Kubeconfig {
        path: PathBuf,
        contexts: Vec<String>,
    },
    InCluster {
        name: String,
    },
}

#[derive(Debug, Clone)]
pub struct Settings {
    pub source: Source,
    pub include: Option<GlobSet>,
    pub exclude: Option<GlobSet>,
    pub include_system: bool,
    pub ingresses: bool,
    pub owner_keys: Vec<String>,
    pub component_keys: Vec<String>,
    pub namespace_as_system: bool,
    pub namespace: String,
    pub page_size: u32,
    pub timeout: std::time::Duration,
    pub max_retries: u32,
    pub watch: bool,
}

impl Settings {
    /// Whether a namespace is crawled.
    pub fn keeps_namespace(&self, ns: &str) -> bool {
        if !self.include_system && SYSTEM_NAMESPACES.contains(&ns) {
            return false;
        }
        self.include.as_ref().is_none_or(|g| g.is_match(ns))
            && !self.exclude.as_ref().is_some_and(|g| g.is_match(ns))
    }
}

impl KubernetesConfig {
    pub fn settings(self, base_dir: &Path) -> Result<Settings, ConfigError> {
        let source = match (self.in_cluster, self.contexts.is_empty()) {
            (true, false) => {
                return Err(invalid(
                    "contexts",
                    "set either `contexts` (kubeconfig) or `in_cluster = true`, not both",
                ));
            }
            (true, true) => Source::InCluster {
                name: self.cluster_name.clone(),
            },
            (false, true) => {
                return Err(invalid(
                    "contexts",
                    "list the kubeconfig contexts to crawl (or set `in_cluster = true`)",
                ));
            }
            (false, false) => {
                let path = match &self.kubeconfig {
                    Some(p) => base_dir.join(p),
                    None => std::env::var_os("KUBECONFIG")
                        .map(|v| {
                            // KUBECONFIG may list several files; the first one is used.
                            std::env::split_paths(&v).next().unwrap_or_default()
                        })
                        .or_else(|| {
                            std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".kube/config"))
                        })
                        .ok_or_else(|| {
                            invalid(
                                "kubeconfig",
                                "no kubeconfig: set `kubeconfig`, $KUBECONFIG or $HOME",
                            )
                        })?,
                };
                let mut seen = std::collections::BTreeSet::new();
                for c in &self.contexts {
                    if !seen.insert(c) {
                        return Err(invalid(
                            "contexts",
                            format!("context {c:?} is listed twice"),
                        ));
                    }
                    if c.contains('/') || c.is_empty() {
                        return Err(invalid(
                            "contexts",
                            format!("context {c:?}: names with '/' cannot be scopes"),
                        ));
                    }
                }
                Source::Kubeconfig {
                    path,
                    contexts: self.contexts.clone(),
                }
            }
        };
        ensure(
            surveyor_model::validate::is_valid_namespace(&self.namespace),
            "namespace",
            || format!("{:?} is not a valid catalog namespace", self.namespace),
        )?;
        ensure(self.page_size > 0, "page_size", || {
            "must be at least 1".into()
        })?;
        ensure(
            !self.owner_keys.iter().any(|k| k.trim().is_empty()),
            "owner_keys",
            || "keys cannot be empty".into(),
        )?;
        Ok(Settings {
            source,
            include: globs("namespaces", &self.namespaces)?,
            exclude: globs("exclude_namespaces", &self.exclude_namespaces)?,
            include_system: self.include_system_namespaces,
            ingresses: self.ingresses,
            owner_keys: self.owner_keys,
            component_keys: self.component_keys,
            namespace_as_system: self.namespace_as_system,
            namespace: self.namespace,
            page_size: self.page_size,
            timeout: std::time::Duration::from_secs(self.timeout_secs.max(1)),
            max_retries: self.max_retries,
            watch: self.watch,
        })
    }
}

fn globs(key: &'static str, patterns: &[String]) -> Result<Option<GlobSet>, ConfigError> {
    if patterns.is_empty() {
        return Ok(None);
    }
    let mut set = GlobSetBuilder::new();
    for p in patterns {
        let glob = GlobBuilder::new(p)
            .build()
            .map_err(|e| invalid(key, format!("invalid glob {p:?}: {}", e.kind())))?;
        set.add(glob);
    }
    set.build()
        .map(Some)
        .map_err(|e| invalid(key, e.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn settings(toml: &str) -> Result<Settings, ConfigError> {
        let config: KubernetesConfig = toml::from_str(toml).unwrap();
        config.settings(Path::new("/etc/surveyor"))
    }

    #[test]
    fn clusters_come_from_contexts_or_the_pod() {
        let s = settings("contexts = [\"prod\"]\nkubeconfig = \"kube.yaml\"").unwrap();
        let Source::Kubeconfig { path, contexts } = s.source else {
            panic!()
        };
        assert_eq!(path, Path::new("/etc/surveyor/kube.yaml"));
        assert_eq!(contexts, ["prod"]);
        assert!(matches!(
            settings("in_cluster = true").unwrap().source,
            Source::InCluster { .. }
        ));
        for (toml, key) in [
            ("", "contexts"),
            ("in_cluster = true\ncontexts = [\"a\"]", "contexts"),
            ("contexts = [\"a\", \"a\"]", "contexts"),
            ("contexts = [\"a\"]\nnamespaces = [\"[\"]", "namespaces"),
            ("contexts = [\"a\"]\nnamespace = \"Not Valid\"", "namespace"),
        ] {
            let err = settings(toml).unwrap_err().to_string();
            assert!(err.starts_with(key), "{toml}: {err}");
        }
    }

    #[test]
    fn system_namespaces_are_skipped_unless_asked_for() {
        let s = settings("contexts = [\"a\"]\nexclude_namespaces = [\"tmp-*\"]").unwrap();
        assert!(s.keeps_namespace("payments"));
        assert!(!s.keeps_namespace("kube-system"));
        assert!(!s.keeps_namespace("tmp-42"));
        let s = settings(
            "contexts = [\"a\"]\ninclude_system_namespaces = true\nnamespaces = [\"kube-*\"]",
        )
        .unwrap();
        assert!(s.keeps_namespace("kube-system"));
        assert!(!s.keeps_namespace("payments"));
    }
}
