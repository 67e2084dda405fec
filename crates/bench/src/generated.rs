//! A connector that makes up `n` Components (owner, system, type, lifecycle, tags, an
//! annotation, optionally a label), for catalogs of any size without a vendor API in the way.

use surveyor_model::{Connector, ConnectorError, Entity, Observation, ObservationSink, Outcome};

/// Owners are `team-0` .. `team-499`: 200 components each at 100k.
pub const TEAMS: usize = 500;
/// `cost-center` label values `cc-0` .. `cc-99`: 1,000 components each at 100k.
pub const COST_CENTERS: usize = 100;

/// `generation` > 0 changes the owner of 1% of the components.
pub struct Generated {
    pub n: usize,
    pub generation: usize,
    /// Adds a `cost-center` label (the api scenario filters on it); off for reconcile, so its
    /// figures stay comparable with the earlier ones.
    pub labels: bool,
}

impl Generated {
    pub fn new(n: usize, generation: usize) -> Self {
        Self {
            n,
            generation,
            labels: false,
        }
    }
}

pub fn entity(i: usize, generation: usize, labels: bool) -> Entity {
    let mut e = Entity::new("Component", "default", &format!("service-{i:06}"));
    e.metadata.description = Some(format!("Generated service number {i} of the benchmark org"));
    e.metadata.annotations.insert(
        "github.com/project-slug".into(),
        format!("acme/service-{i:06}"),
    );
    e.metadata.tags = vec!["rust".into(), format!("tier-{}", i % 3)];
    if labels {
        e.metadata
            .labels
            .insert("cost-center".into(), format!("cc-{}", i % COST_CENTERS));
    }
    let changed = generation > 0 && i.is_multiple_of(100);
    let owner = if changed {
        format!("team-{}", (i / 100 + generation) % TEAMS)
    } else {
        format!("team-{}", i % TEAMS)
    };
    e.spec.insert("type".into(), "service".into());
    e.spec.insert("lifecycle".into(), "production".into());
    e.spec.insert("owner".into(), owner.into());
    e.spec
        .insert("system".into(), format!("system-{}", i % 50).into());
    e
}

#[async_trait::async_trait]
impl Connector for Generated {
    fn id(&self) -> &str {
        "bench"
    }
    fn kind(&self) -> &'static str {
        "generated"
    }
    async fn crawl(&self, sink: ObservationSink) -> Result<Outcome, ConnectorError> {
        for i in 0..self.n {
            sink.send(Observation::discovered(
                "org",
                format!("node-{i}"),
                entity(i, self.generation, self.labels),
            ))
            .await?;
        }
        let mut o = Outcome::default();
        o.complete("org");
        Ok(o)
    }
}
