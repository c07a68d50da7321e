//! The places events are shipped to. Each takes a batch of records and either takes all of them or
//! fails; retrying, batching from the queue and telemetry belong to the delivery loop.

pub mod file;
pub mod index;
pub mod otlp;
pub mod prometheus;
pub mod webhook;

use std::sync::Arc;

use prometheus_client::registry::Registry;

use super::ShipperError;
use super::config::{SinkConfig, SinkKind};
use super::record::Record;

/// Why a delivery failed; the delivery loop retries it.
#[derive(Debug, thiserror::Error)]
pub enum SinkError {
    /// The receiver could not be reached or did not answer in time.
    #[error("request failed: {}", causes(.0))]
    Request(#[source] reqwest::Error),
    /// The receiver answered with a status other than 2xx.
    #[error("the receiver answered {status}: {body}")]
    Status { status: u16, body: String },
    /// The log index did not take the events.
    #[error("indexing failed: {0}")]
    Index(String),
    /// The OTLP export failed.
    #[error("OTLP export failed: {0}")]
    Otlp(String),
    /// Writing the file failed.
    #[error("writing {path}: {source}")]
    Io { path: String, source: std::io::Error },
}

impl SinkError {
    /// Whether trying again cannot help: the receiver refused the request itself (a 4xx other than
    /// 408 Request Timeout and 429 Too Many Requests).
    pub fn is_permanent(&self) -> bool {
        matches!(self, SinkError::Status { status, .. } if (400..500).contains(status) && *status != 408 && *status != 429)
    }
}

pub enum Sink {
    Webhook(webhook::WebhookSink),
    File(file::FileSink),
    // Boxed: the exporter is large, and a sink is built once.
    Otlp(Box<otlp::OtlpSink>),
    Index(index::IndexSink),
    Prometheus(prometheus::PrometheusSink),
}

impl Sink {
    pub fn build(
        name: &str,
        config: &SinkConfig,
        registry: &mut Registry,
        event_index: Option<&Arc<dyn index::EventIndex>>,
    ) -> Result<Sink, ShipperError> {
        let invalid = |reason: String| ShipperError::Sink {
            name: name.to_string(),
            reason,
        };
        Ok(match config.kind().map_err(invalid)? {
            SinkKind::Webhook(c) => Sink::Webhook(webhook::WebhookSink::new(c).map_err(invalid)?),
            SinkKind::File(c) => Sink::File(file::FileSink::open(c).map_err(|e| invalid(e.to_string()))?),
            SinkKind::Otlp(c) => Sink::Otlp(Box::new(otlp::OtlpSink::new(c).map_err(invalid)?)),
            SinkKind::LogIndex(_) => match event_index {
                Some(event_index) => Sink::Index(index::IndexSink::new(event_index.clone())),
                None => return Err(invalid("this process has no log index to write to".into())),
            },
            SinkKind::Prometheus(c) => Sink::Prometheus(prometheus::PrometheusSink::new(c, registry)),
        })
    }

    /// The most records one delivery takes.
    pub fn max_batch(&self) -> usize {
        match self {
            Sink::Webhook(s) => s.max_batch(),
            Sink::File(_) | Sink::Otlp(_) | Sink::Index(_) | Sink::Prometheus(_) => 1000,
        }
    }

    pub async fn deliver(&mut self, records: &[Record]) -> Result<(), SinkError> {
        match self {
            Sink::Webhook(s) => s.deliver(records).await,
            Sink::File(s) => s.deliver(records).await,
            Sink::Otlp(s) => s.deliver(records).await,
            Sink::Index(s) => s.deliver(records).await,
            Sink::Prometheus(s) => {
                s.deliver(records);
                Ok(())
            }
        }
    }
}

/// An error with its causes, which for reqwest hold the useful part ("connection refused").
fn causes(error: &dyn std::error::Error) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}

/// Sink names become metric label values and queue names: lowercase letters, digits and `-`, at most 63.
pub fn check_name(name: &str) -> Result<(), String> {
    let ok = !name.is_empty()
        && name.len() <= 63
        && name.starts_with(|c: char| c.is_ascii_lowercase() || c.is_ascii_digit())
        && name
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-');
    if ok {
        Ok(())
    } else {
        Err("a sink name is lowercase letters, digits and '-' (at most 63)".into())
    }
}
