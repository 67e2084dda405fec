//! Reads saved API server list responses (`kubectl get deploy -A -o json`, recorded replays) the
//! way the connector does, and prints what it found: a check of the parsers against real data.
//! `cargo run -p surveyor-connector-kubernetes --example read_lists -- FILE...`

use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::core::v1::Pod;
use kube::core::ObjectList;

fn main() {
    let mut failed = false;
    for path in std::env::args().skip(1) {
        let text = match std::fs::read_to_string(&path) {
            Ok(t) => t,
            Err(e) => {
                eprintln!("{path}: {e}");
                failed = true;
                continue;
            }
        };
        let kind = serde_json::from_str::<serde_json::Value>(&text)
            .ok()
            .and_then(|v| v["kind"].as_str().map(str::to_string))
            .unwrap_or_default();
        match kind.as_str() {
            "DeploymentList" => match serde_json::from_str::<ObjectList<Deployment>>(&text) {
                Ok(list) => {
                    for d in &list.items {
                        let o = surveyor_connector_kubernetes::read_deployment(d);
                        println!(
                            "{path}: Deployment {}/{} uid {} images {} replicas {}",
                            o.namespace, o.name, o.uid, o.facts["images"], o.facts["replicas"]
                        );
                    }
                }
                Err(e) => {
                    eprintln!("{path}: {e}");
                    failed = true;
                }
            },
            "PodList" => match serde_json::from_str::<ObjectList<Pod>>(&text) {
                Ok(list) => println!(
                    "{path}: PodList with {} pods, continue {:?}, resourceVersion {:?}",
                    list.items.len(),
                    list.metadata.continue_,
                    list.metadata.resource_version
                ),
                Err(e) => {
                    eprintln!("{path}: {e}");
                    failed = true;
                }
            },
            other => println!("{path}: {other:?} not read by the connector"),
        }
    }
    std::process::exit(i32::from(failed));
}
