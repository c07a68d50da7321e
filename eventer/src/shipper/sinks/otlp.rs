//! Events as OpenTelemetry log records, exported with `opentelemetry-otlp` (gRPC, HTTP/protobuf or
//! HTTP/JSON). The exporter is called directly, one export per batch, so a batch counts as delivered
//! only when the collector took it (no SDK batch processor dropping records behind our back).
//!
//! A record: body = the event's message; severity WARN for `Warning` events, INFO for `Normal`; time =
//! the event's last occurrence; attributes in the names of the OpenTelemetry Collector's
//! `k8seventsreceiver` (`k8s.event.reason`, `k8s.event.count`, `k8s.object.kind`, …) plus
//! `glasshouse.delivery_id`. The resource is `service.name=glasshouse`.

use std::collections::HashMap;
use std::time::{Duration, SystemTime};

use jiff::Timestamp;
use opentelemetry::logs::{AnyValue, LogRecord as _, Logger as _, LoggerProvider as _, Severity};
use opentelemetry::{InstrumentationScope, Key};
use opentelemetry_otlp::{LogExporter, Protocol, WithExportConfig, WithHttpConfig, WithTonicConfig};
use opentelemetry_sdk::Resource;
use opentelemetry_sdk::logs::{LogBatch, LogExporter as _, SdkLogRecord, SdkLogger, SdkLoggerProvider};

use super::SinkError;
use crate::shipper::config::{OtlpConfig, OtlpProtocol};
use crate::shipper::record::{Record, occurrences};

pub struct OtlpSink {
    exporter: LogExporter,
    logger: SdkLogger,
    scope: InstrumentationScope,
    /// Keeps the logger's provider alive; it has no processors, records are exported by hand.
    _provider: SdkLoggerProvider,
}

impl OtlpSink {
    pub fn new(config: &OtlpConfig) -> Result<Self, String> {
        let timeout = Duration::from_secs(config.timeout_seconds);
        let headers: HashMap<String, String> = config.headers.clone().into_iter().collect();
        let exporter = match config.protocol {
            OtlpProtocol::Grpc => {
                let mut map = reqwest::header::HeaderMap::new();
                for (name, value) in &headers {
                    let name = reqwest::header::HeaderName::from_bytes(name.as_bytes())
                        .map_err(|e| format!("headers: {name}: {e}"))?;
                    let value = value.parse().map_err(|e| format!("headers: {value:?}: {e}"))?;
                    map.insert(name, value);
                }
                let metadata = opentelemetry_otlp::tonic_types::metadata::MetadataMap::from_headers(map);
                LogExporter::builder()
                    .with_tonic()
                    .with_endpoint(config.endpoint.clone())
                    .with_timeout(timeout)
                    .with_metadata(metadata)
                    .build()
            }
            OtlpProtocol::HttpProtobuf | OtlpProtocol::HttpJson => {
                let protocol = if config.protocol == OtlpProtocol::HttpJson {
                    Protocol::HttpJson
                } else {
                    Protocol::HttpBinary
                };
                LogExporter::builder()
                    .with_http()
                    .with_endpoint(http_logs_endpoint(&config.endpoint))
                    .with_protocol(protocol)
                    .with_timeout(timeout)
                    .with_headers(headers)
                    .build()
            }
        }
        .map_err(|e| format!("building the OTLP exporter: {e}"))?;
        let mut exporter = exporter;
        exporter.set_resource(&Resource::builder_empty().with_service_name("glasshouse").build());
        let provider = SdkLoggerProvider::builder().build();
        let scope = InstrumentationScope::builder("glasshouse.eventer").build();
        let logger = provider.logger_with_scope(scope.clone());
        Ok(OtlpSink {
            exporter,
            logger,
            scope,
            _provider: provider,
        })
    }

    pub async fn deliver(&mut self, records: &[Record]) -> Result<(), SinkError> {
        let logs: Vec<SdkLogRecord> = records.iter().map(|r| self.log_record(r)).collect();
        let batch: Vec<(&SdkLogRecord, &InstrumentationScope)> =
            logs.iter().map(|l| (l, &self.scope)).collect();
        self.exporter
            .export(LogBatch::new(&batch))
            .await
            .map_err(|e| SinkError::Otlp(e.to_string()))
    }

    fn log_record(&self, record: &Record) -> SdkLogRecord {
        let event = &record.event;
        let mut log = self.logger.create_log_record();
        let time = [
            event
                .series
                .as_ref()
                .and_then(|s| s.last_observed_time.as_ref())
                .map(|t| t.0),
            event.last_timestamp.as_ref().map(|t| t.0),
            event.event_time.as_ref().map(|t| t.0),
            event.first_timestamp.as_ref().map(|t| t.0),
        ]
        .into_iter()
        .flatten()
        .next();
        if let Some(time) = time {
            log.set_timestamp(system_time(time));
        }
        log.set_observed_timestamp(SystemTime::now());
        log.set_event_name("k8s.event");
        let (severity, text) = match event.type_.as_deref() {
            Some("Warning") => (Severity::Warn, "Warning"),
            _ => (Severity::Info, "Normal"),
        };
        log.set_severity_number(severity);
        log.set_severity_text(text);
        log.set_body(AnyValue::from(event.message.clone().unwrap_or_default()));
        let object = &event.involved_object;
        let strings = [
            ("glasshouse.delivery_id", Some(&record.delivery_id)),
            ("k8s.event.name", event.metadata.name.as_ref()),
            ("k8s.event.uid", event.metadata.uid.as_ref()),
            ("k8s.namespace.name", event.metadata.namespace.as_ref()),
            ("k8s.event.reason", event.reason.as_ref()),
            ("k8s.event.action", event.action.as_ref()),
            (
                "k8s.event.reporting_component",
                event.reporting_component.as_ref(),
            ),
            (
                "k8s.event.source.component",
                event.source.as_ref().and_then(|s| s.component.as_ref()),
            ),
            (
                "k8s.event.source.host",
                event.source.as_ref().and_then(|s| s.host.as_ref()),
            ),
            ("k8s.object.kind", object.kind.as_ref()),
            ("k8s.object.name", object.name.as_ref()),
            ("k8s.object.uid", object.uid.as_ref()),
            ("k8s.object.namespace", object.namespace.as_ref()),
            ("k8s.object.fieldpath", object.field_path.as_ref()),
            ("k8s.object.api_version", object.api_version.as_ref()),
            ("k8s.object.resource_version", object.resource_version.as_ref()),
        ];
        for (key, value) in strings {
            if let Some(value) = value.filter(|v| !v.is_empty()) {
                log.add_attribute(Key::from_static_str(key), AnyValue::from(value.clone()));
            }
        }
        let count = occurrences(event);
        log.add_attribute(
            Key::from_static_str("k8s.event.count"),
            AnyValue::Int(i64::from(count)),
        );
        let start = event
            .first_timestamp
            .as_ref()
            .map(|t| t.0)
            .or(event.event_time.as_ref().map(|t| t.0));
        if let Some(start) = start {
            log.add_attribute(
                Key::from_static_str("k8s.event.start_time"),
                AnyValue::from(start.to_string()),
            );
        }
        log
    }
}

fn system_time(t: Timestamp) -> SystemTime {
    SystemTime::from(t)
}

/// An HTTP endpoint given as a base URL gets the OTLP logs path.
fn http_logs_endpoint(endpoint: &str) -> String {
    match reqwest::Url::parse(endpoint) {
        Ok(url) if url.path() == "/" || url.path().is_empty() => {
            format!("{}/v1/logs", endpoint.trim_end_matches('/'))
        }
        _ => endpoint.to_string(),
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn a_base_url_gets_the_logs_path() {
        assert_eq!(
            super::http_logs_endpoint("http://c:4318"),
            "http://c:4318/v1/logs"
        );
        assert_eq!(
            super::http_logs_endpoint("http://c:4318/"),
            "http://c:4318/v1/logs"
        );
        assert_eq!(
            super::http_logs_endpoint("http://c:4318/custom/logs"),
            "http://c:4318/custom/logs"
        );
    }
}
