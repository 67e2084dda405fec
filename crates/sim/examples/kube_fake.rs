//! Serves the simulated org's workloads as a fake Kubernetes API server until interrupted, for
//! trying the kubernetes connector by hand:
//! `cargo run -p surveyor-sim --example kube_fake -- [KUBECONFIG_PATH]` writes a kubeconfig with
//! the context `sim` (default `./sim-kubeconfig`) and every 30 s deletes a workload.

use std::time::Duration;

use surveyor_sim::{Cluster, KubeFake, Org, OrgSpec};

#[tokio::main]
async fn main() -> std::io::Result<()> {
    let path = std::env::args()
        .nth(1)
        .unwrap_or_else(|| "sim-kubeconfig".into());
    let org = Org::generate(&OrgSpec::small());
    let fake = KubeFake::start(Cluster::from_org(&org, "sim")).await?;
    std::fs::write(&path, KubeFake::kubeconfig(&[("sim", fake.url())]))?;
    println!("fake Kubernetes API server at {}", fake.url());
    println!("kubeconfig written to {path} (context \"sim\")");
    loop {
        tokio::time::sleep(Duration::from_secs(30)).await;
        let gone = fake.with_cluster(|c| {
            let (ns, name) = c.names("deployments").into_iter().next()?;
            c.delete("deployments", &ns, &name)
                .then(|| format!("{ns}/{name}"))
        });
        if let Some(what) = gone {
            println!("deleted deployment {what}");
        }
    }
}
