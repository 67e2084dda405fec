//! A scripted connector for the tests of the crates that run connectors (engine, API, CLI and
//! the end-to-end tests), with the feature `testing`.

use std::sync::Mutex;

use crate::{Connector, ConnectorError, Observation, ObservationSink, Outcome};

/// A connector that replays a scripted crawl: the observations to emit and the outcome.
pub struct Scripted {
    pub id: String,
    script: Mutex<(Vec<Observation>, Result<Outcome, String>)>,
    /// How long the crawl takes after the observations, before it ends.
    stall: std::time::Duration,
}

impl Scripted {
    pub fn new(id: &str, observations: Vec<Observation>, outcome: Outcome) -> Self {
        Self {
            id: id.to_string(),
            script: Mutex::new((observations, Ok(outcome))),
            stall: std::time::Duration::ZERO,
        }
    }

    /// Emits the observations, then fails as a whole.
    pub fn failing(id: &str, observations: Vec<Observation>, error: &str) -> Self {
        Self {
            id: id.to_string(),
            script: Mutex::new((observations, Err(error.to_string()))),
            stall: std::time::Duration::ZERO,
        }
    }

    /// Takes `stall` after the observations before the crawl ends (a slow source).
    pub fn stalling(self, stall: std::time::Duration) -> Self {
        Self { stall, ..self }
    }
}

#[async_trait::async_trait]
impl Connector for Scripted {
    fn id(&self) -> &str {
        &self.id
    }
    fn kind(&self) -> &'static str {
        "scripted"
    }
    async fn crawl(&self, sink: ObservationSink) -> Result<Outcome, ConnectorError> {
        let (observations, outcome) = {
            let guard = self.script.lock().expect("script lock");
            (guard.0.clone(), guard.1.clone())
        };
        for o in observations {
            sink.send(o).await?;
        }
        if !self.stall.is_zero() {
            tokio::time::sleep(self.stall).await;
        }
        outcome.map_err(ConnectorError::Failed)
    }
}

/// An outcome with every listed scope complete.
pub fn complete(scopes: &[&str]) -> Outcome {
    let mut o = Outcome::default();
    for s in scopes {
        o.complete(*s);
    }
    o
}
