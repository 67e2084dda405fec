//! A simulated engineering organisation for tests, `surveyor demo` and benchmarks: teams,
//! people, repositories with CODEOWNERS, manifests and descriptors, generated deterministically
//! from a seed at any size, and mutable between runs. The fake vendor APIs render views of it.
//!
//! The fake GitHub, GitLab, PagerDuty and Jira announce changes as webhooks once told where to
//! (`send_webhooks`); [`webhook`] describes the knobs that drop, duplicate, delay or reorder them.
//! The fake Kubernetes API serves watches with knobs of the same kind ([`kubernetes`]).

pub mod github;
pub mod gitlab;
pub mod jira;
pub mod kubernetes;
pub mod names;
pub mod org;
pub mod pagerduty;
pub mod plants;
mod rng;
mod serve;
pub mod truth;
pub mod webhook;

pub use serve::{Fake, percent_encode};

pub use github::{FAKE_TOKEN, FakeApp, FakeStats, Fault, FaultAction, GithubFake};
pub use gitlab::{GITLAB_TOKEN, GitlabFake, GitlabStats};
pub use jira::{JiraFake, JiraFault, JiraFaultAction, JiraFlavor, JiraSite, JiraStats};
pub use kubernetes::{Cluster, KUBE_TOKEN, KubeFake, KubeStats, WatchKnobs, WatchedChange};
pub use names::{OtherNames, other_names};
pub use org::{Language, Org, OrgSpec, Person, Repo, Team};
pub use pagerduty::{Account, PD_TOKEN, PagerDutyFake, PagerDutyStats};
pub use plants::Plants;
pub use truth::{Truth, Views};
pub use webhook::{Event, Fate, Planted, PlantedDelivery, Subject, Vendor, WebhookSink, Webhooks};
