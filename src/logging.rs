//! Component logs: `tracing` to standard error, as text or JSON; `RUST_LOG` filters (default `info`).
//!
//! Component traces: when the standard `OTEL_EXPORTER_OTLP_ENDPOINT` (or `…_TRACES_ENDPOINT`) variable is
//! set, the spans of API requests, controller reconciles, scheduling attempts, probe runs and log
//! commits are exported over OTLP/HTTP (protobuf) in batches; `OTEL_EXPORTER_OTLP_PROTOCOL` may say
//! `http/protobuf` or nothing (another protocol is refused with a warning). Without it no exporter exists and spans
//! cost what `tracing` spans cost without a subscriber that records them.

use opentelemetry::trace::TracerProvider;
use tracing_subscriber::EnvFilter;
use tracing_subscriber::Layer;
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::util::SubscriberInitExt;

use crate::cli::LogFormat;

/// Flushes and stops the trace exporter, if there is one, when dropped (after the runtime is gone).
pub struct Tracing(Option<opentelemetry_sdk::trace::SdkTracerProvider>);

impl Drop for Tracing {
    fn drop(&mut self) {
        if let Some(provider) = self.0.take() {
            let _ = provider.shutdown();
        }
    }
}

fn set(name: &str) -> bool {
    std::env::var_os(name).is_some_and(|v| !v.is_empty())
}

/// An OTLP span exporter, if the environment asks for one.
fn tracer_provider() -> Option<opentelemetry_sdk::trace::SdkTracerProvider> {
    let wanted = set("OTEL_EXPORTER_OTLP_ENDPOINT") || set("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT");
    if !wanted || std::env::var("OTEL_TRACES_EXPORTER").is_ok_and(|v| v == "none") {
        return None;
    }
    // Only OTLP/HTTP with protobuf is built in; a gRPC or JSON collector would refuse every batch.
    let protocol = [
        "OTEL_EXPORTER_OTLP_TRACES_PROTOCOL",
        "OTEL_EXPORTER_OTLP_PROTOCOL",
    ]
    .into_iter()
    .find(|name| set(name))
    .and_then(|name| std::env::var(name).ok())
    .unwrap_or_default();
    if !protocol.is_empty() && protocol != "http/protobuf" {
        eprintln!(
            "warning: traces are not exported: OTLP protocol {protocol:?} is not supported, only \"http/protobuf\""
        );
        return None;
    }
    use opentelemetry_otlp::{WithExportConfig, WithHttpConfig};
    // A blocking client: the batch exporter sends from a thread of its own, outside the async runtime.
    let client = match reqwest_otlp::blocking::Client::builder()
        .timeout(std::time::Duration::from_secs(10))
        .build()
    {
        Ok(client) => client,
        Err(e) => {
            eprintln!("warning: traces are not exported: {e}");
            return None;
        }
    };
    let exporter = match opentelemetry_otlp::SpanExporter::builder()
        .with_http()
        .with_http_client(client)
        .with_protocol(opentelemetry_otlp::Protocol::HttpBinary)
        .build()
    {
        Ok(exporter) => exporter,
        Err(e) => {
            eprintln!("warning: traces are not exported: {e}");
            return None;
        }
    };
    let resource = opentelemetry_sdk::Resource::builder()
        .with_service_name("glasshouse")
        .build();
    Some(
        opentelemetry_sdk::trace::SdkTracerProvider::builder()
            .with_batch_exporter(exporter)
            .with_resource(resource)
            .build(),
    )
}

pub fn init(format: LogFormat) -> Tracing {
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info"));
    // `RUST_LOG` filters the logs only: the spans exported are those at info and above, whatever
    // the logs show.
    let logs = match format {
        LogFormat::Text => tracing_subscriber::fmt::layer()
            .with_writer(std::io::stderr)
            .with_filter(filter)
            .boxed(),
        LogFormat::Json => tracing_subscriber::fmt::layer()
            .json()
            .flatten_event(true)
            .with_writer(std::io::stderr)
            .with_filter(filter)
            .boxed(),
    };
    let provider = tracer_provider();
    let traces = provider.as_ref().map(|p| {
        tracing_opentelemetry::layer()
            .with_tracer(p.tracer("glasshouse"))
            .with_filter(tracing_subscriber::filter::LevelFilter::INFO)
    });
    tracing_subscriber::registry().with(logs).with(traces).init();
    Tracing(provider)
}
