//! Logs to stderr (text or JSON lines) and, when `[telemetry] otlp_endpoint` is set, traces to
//! an OpenTelemetry collector over OTLP/HTTP: a span per run, per scope and per API request.

use opentelemetry::trace::TracerProvider as _;
use opentelemetry_otlp::WithExportConfig;
use opentelemetry_sdk::Resource;
use opentelemetry_sdk::trace::SdkTracerProvider;
use surveyor_engine::config::TelemetryConfig;
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::util::SubscriberInitExt;
use tracing_subscriber::{EnvFilter, Layer};

/// How log lines look.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum LogFormat {
    Text,
    Json,
}

/// Keeps the trace exporter alive; [`Telemetry::shutdown`] flushes what is buffered.
pub struct Telemetry {
    provider: Option<SdkTracerProvider>,
}

impl Telemetry {
    pub fn shutdown(self) {
        if let Some(p) = self.provider
            && let Err(e) = p.shutdown()
        {
            eprintln!("warning: flushing traces failed: {e}");
        }
    }
}

fn crates_at(level: &str) -> String {
    [
        "surveyor",
        "surveyor_engine",
        "surveyor_store",
        "surveyor_api",
        "surveyor_http",
        "surveyor_connector_file",
        "surveyor_connector_github",
        "surveyor_connector_gitlab",
        "surveyor_connector_kubernetes",
        "surveyor_connector_pagerduty",
        "surveyor_connector_jira",
    ]
    .iter()
    .map(|c| format!("{c}={level}"))
    .collect::<Vec<_>>()
    .join(",")
}

/// Installs the global subscriber. Log lines follow `level`; traces always carry surveyor's
/// info-level spans (runs, scopes, requests) whatever the log level.
pub fn init(level: &str, format: LogFormat, telemetry: Option<&TelemetryConfig>) -> Telemetry {
    let filter = EnvFilter::try_new(format!("{},warn", crates_at(level)))
        .unwrap_or_else(|_| EnvFilter::new("warn"));
    let fmt = match format {
        LogFormat::Text => tracing_subscriber::fmt::layer()
            .with_writer(std::io::stderr)
            .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
            .with_target(false)
            .boxed(),
        LogFormat::Json => tracing_subscriber::fmt::layer()
            .json()
            .with_writer(std::io::stderr)
            .with_current_span(true)
            .boxed(),
    }
    .with_filter(filter);
    let mut provider = None;
    let otel = telemetry.and_then(|t| {
        let endpoint = t.otlp_endpoint.as_ref()?;
        let exporter = opentelemetry_otlp::SpanExporter::builder()
            .with_http()
            .with_endpoint(format!("{endpoint}/v1/traces"))
            .build();
        let exporter = match exporter {
            Ok(e) => e,
            Err(e) => {
                eprintln!("warning: traces will not be exported: {e}");
                return None;
            }
        };
        let p = SdkTracerProvider::builder()
            .with_batch_exporter(exporter)
            .with_resource(
                Resource::builder()
                    .with_service_name(t.service_name.clone())
                    .build(),
            )
            .build();
        let tracer = p.tracer("surveyor");
        provider = Some(p);
        let spans = EnvFilter::try_new(format!("{},warn", crates_at("info")))
            .unwrap_or_else(|_| EnvFilter::new("info"));
        Some(
            tracing_opentelemetry::layer()
                .with_tracer(tracer)
                .with_filter(spans),
        )
    });
    let _ = tracing_subscriber::registry()
        .with(fmt)
        .with(otel)
        .try_init();
    Telemetry { provider }
}
