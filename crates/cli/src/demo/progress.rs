//! Progress of the demo's syncs on stderr: a live line per connector on a terminal (observations
//! crawled, then reconciling, then the result), plain lines otherwise.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use indicatif::{MultiProgress, ProgressBar, ProgressDrawTarget, ProgressStyle};
use surveyor_engine::{RunReport, RunStatus};
use surveyor_model::{
    Connector, ConnectorError, ConnectorMetric, ObservationSink, Outcome, SinkClosed,
};

/// Where progress goes: bars on a terminal, lines elsewhere, nothing when quiet.
#[derive(Clone)]
pub enum Progress {
    Bars(MultiProgress),
    Lines,
    Quiet,
}

impl Progress {
    /// Bars when stderr is a terminal, plain lines otherwise.
    pub fn for_stderr() -> Self {
        use std::io::IsTerminal;
        if std::io::stderr().is_terminal() {
            Self::Bars(MultiProgress::with_draw_target(ProgressDrawTarget::stderr()))
        } else {
            Self::Lines
        }
    }

    /// One connector's line, shown waiting until its run starts.
    pub fn task(&self, id: &str) -> Arc<Task> {
        let bar = match self {
            Self::Bars(multi) => {
                let style = ProgressStyle::with_template(
                    "{prefix:<10.bold} {spinner:.cyan} {msg} {elapsed:.dim}",
                )
                .unwrap_or_else(|_| ProgressStyle::default_spinner());
                let bar = multi.add(ProgressBar::new_spinner().with_style(style));
                bar.set_prefix(id.to_string());
                bar.set_message("waiting");
                Some(bar)
            }
            Self::Lines | Self::Quiet => None,
        };
        Arc::new(Task {
            id: id.to_string(),
            lines: matches!(self, Self::Lines),
            bar,
            seen: AtomicU64::new(0),
            started: std::sync::Mutex::new(Instant::now()),
        })
    }
}

/// One connector's run as it goes.
pub struct Task {
    id: String,
    lines: bool,
    bar: Option<ProgressBar>,
    seen: AtomicU64,
    started: std::sync::Mutex<Instant>,
}

impl Task {
    pub fn start(&self) {
        *self.started.lock().unwrap_or_else(|e| e.into_inner()) = Instant::now();
        self.seen.store(0, Ordering::Relaxed);
        if let Some(bar) = &self.bar {
            bar.reset_elapsed();
            bar.set_message("crawling");
            bar.enable_steady_tick(Duration::from_millis(100));
        } else if self.lines {
            eprintln!("{}: crawling", self.id);
        }
    }

    fn observed(&self) {
        let n = self.seen.fetch_add(1, Ordering::Relaxed) + 1;
        if let Some(bar) = &self.bar
            && (n < 100 || n.is_multiple_of(50))
        {
            bar.set_message(format!("crawling: {n} observations"));
        }
    }

    fn crawled(&self) {
        let n = self.seen.load(Ordering::Relaxed);
        if let Some(bar) = &self.bar {
            bar.set_message(format!("reconciling {n} observations"));
        } else if self.lines {
            eprintln!("{}: crawled {n} observations, reconciling", self.id);
        }
    }

    pub fn elapsed(&self) -> Duration {
        self.started
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .elapsed()
    }

    /// The run's end: its status and changes, or why it failed.
    pub fn finish(&self, result: Result<&RunReport, &str>) {
        let secs = self.elapsed().as_secs_f64();
        let (ok, text) = match result {
            Ok(r) => {
                let (o, c) = (&r.counts.observations, &r.counts.entities);
                (
                    r.status == RunStatus::Succeeded,
                    format!(
                        "{} in {secs:.1}s: {} observed, {} created, {} updated, {} renamed, {} deleted, {} restored",
                        r.status.as_str(),
                        o.observed,
                        c.created,
                        c.updated,
                        c.renamed,
                        c.deleted,
                        c.restored
                    ),
                )
            }
            Err(e) => (false, format!("failed in {secs:.1}s: {e}")),
        };
        if let Some(bar) = &self.bar {
            bar.set_style(
                ProgressStyle::with_template("{prefix:<10.bold} {msg}")
                    .unwrap_or_else(|_| ProgressStyle::default_spinner()),
            );
            bar.finish_with_message(format!("{} {text}", if ok { "✓" } else { "✗" }));
        } else if self.lines {
            eprintln!("{}: {text}", self.id);
        }
    }
}

/// A connector that reports each observation it passes on, and the end of its crawl, to its
/// task: the engine's run gives no progress of its own.
pub struct Watched {
    pub inner: Arc<dyn Connector>,
    pub task: Arc<Task>,
}

#[async_trait::async_trait]
impl Connector for Watched {
    fn id(&self) -> &str {
        self.inner.id()
    }

    fn kind(&self) -> &'static str {
        self.inner.kind()
    }

    async fn crawl(&self, sink: ObservationSink) -> Result<Outcome, ConnectorError> {
        let (inner_sink, mut observations) = ObservationSink::channel(self.inner.id(), 256);
        let forward = async {
            while let Some(observation) = observations.recv().await {
                self.task.observed();
                sink.send(observation).await?;
            }
            Ok::<(), SinkClosed>(())
        };
        // When the engine stops listening, `forward` ends and drops the receiver, so the inner
        // crawl's next send fails and it stops too.
        let (outcome, forwarded) = tokio::join!(self.inner.crawl(inner_sink), forward);
        self.task.crawled();
        forwarded?;
        outcome
    }

    fn metrics(&self) -> Vec<ConnectorMetric> {
        self.inner.metrics()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use surveyor_model::testing::{Scripted, complete};
    use surveyor_model::{Entity, Observation};

    /// A source that reports the components `a`, `b` and `c`, all in the complete scope `s`.
    fn three() -> Arc<Scripted> {
        let observations = ["a", "b", "c"]
            .map(|name| {
                let e = Entity::new("Component", "default", name);
                Observation::discovered("s", name, e)
            })
            .to_vec();
        Arc::new(Scripted::new("three", observations, complete(&["s"])))
    }

    #[tokio::test]
    async fn passes_everything_on_and_counts_it() {
        let task = Progress::Quiet.task("three");
        let watched = Watched {
            inner: three(),
            task: Arc::clone(&task),
        };
        let (sink, mut rx) = ObservationSink::channel("three", 1);
        let collect = async {
            let mut got = Vec::new();
            while let Some(o) = rx.recv().await {
                got.push(o.external_id);
            }
            got
        };
        let (outcome, got) = tokio::join!(watched.crawl(sink), collect);
        assert!(outcome.expect("crawl").status("s").is_some());
        assert_eq!(got, ["a", "b", "c"]);
        assert_eq!(task.seen.load(Ordering::Relaxed), 3);
    }

    #[tokio::test]
    async fn stops_when_nobody_listens() {
        let watched = Watched {
            inner: three(),
            task: Progress::Quiet.task("three"),
        };
        let (sink, rx) = ObservationSink::channel("three", 1);
        drop(rx);
        assert!(matches!(
            watched.crawl(sink).await,
            Err(ConnectorError::Cancelled(_))
        ));
    }
}
