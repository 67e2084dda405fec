//! Serves a simulated org as a fake GitHub until interrupted, for trying the github connector
//! by hand: `cargo run -p surveyor-sim --example github_fake -- [small|medium|large] [latency-ms]`.
//! It prints the `api_url` and token to put in `surveyor.toml`; every 30 s it changes the org.

use std::time::Duration;

use surveyor_sim::{FAKE_TOKEN, GithubFake, Org, OrgSpec};

#[tokio::main]
async fn main() -> std::io::Result<()> {
    let mut args = std::env::args().skip(1);
    let spec = match args.next().as_deref() {
        Some("medium") => OrgSpec::medium(),
        Some("large") => OrgSpec::large(),
        _ => OrgSpec::small(),
    };
    let latency = args.next().and_then(|a| a.parse::<u64>().ok()).unwrap_or(0);
    let fake = GithubFake::start(vec![Org::generate(&spec)]).await?;
    fake.set_latency(Duration::from_millis(latency));
    println!(
        "fake GitHub for org {:?} ({} repos, {} teams, {} people)",
        spec.name, spec.repos, spec.teams, spec.people
    );
    println!("api_url = \"{}\"", fake.url());
    println!("token   = \"{FAKE_TOKEN}\"");
    loop {
        tokio::time::sleep(Duration::from_secs(30)).await;
        if let Some(what) = fake.with_org(&spec.name, |o| o.mutate()) {
            println!("changed: {what}");
        }
    }
}
