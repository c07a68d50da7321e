//! The eventer's own telemetry: one struct per thing that happens, each logging with structured fields
//! and moving its metric together. Every metric name of the crate is declared here, and every label value
//! comes from a closed vocabulary.

use std::fmt::Write;

use prometheus_client::encoding::{EncodeLabelSet, EncodeLabelValue, LabelValueEncoder};
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::registry::Registry;

/// How the recorder wrote an event.
#[derive(Clone, Copy, Debug, Hash, PartialEq, Eq)]
pub enum WriteOperation {
    /// A first occurrence: POST.
    Create,
    /// A repeat: a strategic merge PATCH of count, lastTimestamp and message.
    Patch,
}

/// Why the recorder did not write an event.
#[derive(Clone, Copy, Debug, Hash, PartialEq, Eq)]
pub enum DropReason {
    /// The queue of 1000 events waiting to be written was full.
    QueueFull,
    /// The spam filter's token bucket for the event's source and object was empty.
    SpamFilter,
    /// The API server refused the write with a status (not retried, as upstream).
    Rejected,
    /// Every attempt failed on transport errors.
    RetriesExhausted,
    /// The process shut down while the event waited for a retry.
    Shutdown,
}

impl WriteOperation {
    pub fn as_str(self) -> &'static str {
        match self {
            WriteOperation::Create => "create",
            WriteOperation::Patch => "patch",
        }
    }
}

impl DropReason {
    pub fn as_str(self) -> &'static str {
        match self {
            DropReason::QueueFull => "queue_full",
            DropReason::SpamFilter => "spam_filter",
            DropReason::Rejected => "rejected",
            DropReason::RetriesExhausted => "retries_exhausted",
            DropReason::Shutdown => "shutdown",
        }
    }
}

impl EncodeLabelValue for WriteOperation {
    fn encode(&self, encoder: &mut LabelValueEncoder) -> std::fmt::Result {
        encoder.write_str(self.as_str())
    }
}

impl EncodeLabelValue for DropReason {
    fn encode(&self, encoder: &mut LabelValueEncoder) -> std::fmt::Result {
        encoder.write_str(self.as_str())
    }
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct WriteLabels {
    operation: WriteOperation,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct DropLabels {
    reason: DropReason,
}

/// The recorder's and the TTL's metric families.
#[derive(Clone, Default)]
pub struct EventerMetrics {
    written: Family<WriteLabels, Counter>,
    dropped: Family<DropLabels, Counter>,
    retries: Counter,
    queued: Gauge,
    expired: Counter,
}

impl EventerMetrics {
    pub fn register(registry: &mut Registry) -> Self {
        let metrics = EventerMetrics::default();
        registry.register(
            "glasshouse_event_recorder_writes",
            "Events written to the API by the recorder, by operation.",
            metrics.written.clone(),
        );
        registry.register(
            "glasshouse_event_recorder_dropped",
            "Events the recorder did not write, by reason.",
            metrics.dropped.clone(),
        );
        registry.register(
            "glasshouse_event_recorder_retries",
            "Event writes retried after a transport error.",
            metrics.retries.clone(),
        );
        registry.register(
            "glasshouse_event_recorder_queue_depth",
            "Events waiting to be correlated and written.",
            metrics.queued.clone(),
        );
        registry.register(
            "glasshouse_events_expired",
            "Events deleted by the event TTL.",
            metrics.expired.clone(),
        );
        metrics
    }

    /// Events written with `operation` so far.
    pub fn written(&self, operation: WriteOperation) -> u64 {
        self.written.get_or_create(&WriteLabels { operation }).get()
    }

    /// Events dropped for `reason` so far.
    pub fn dropped(&self, reason: DropReason) -> u64 {
        self.dropped.get_or_create(&DropLabels { reason }).get()
    }

    pub fn retries(&self) -> u64 {
        self.retries.get()
    }

    pub fn queue_depth(&self) -> i64 {
        self.queued.get()
    }

    pub fn expired(&self) -> u64 {
        self.expired.get()
    }
}

/// An event reached the API server.
pub struct EventWritten<'a> {
    pub operation: WriteOperation,
    pub namespace: &'a str,
    pub name: &'a str,
    pub reason: &'a str,
    pub count: i32,
}

impl EventWritten<'_> {
    pub fn emit(&self, metrics: &EventerMetrics) {
        tracing::trace!(
            operation = self.operation.as_str(),
            namespace = self.namespace,
            name = self.name,
            reason = self.reason,
            count = self.count,
            "event written"
        );
        metrics
            .written
            .get_or_create(&WriteLabels {
                operation: self.operation,
            })
            .inc();
    }
}

/// An event was not written.
pub struct EventDropped<'a> {
    pub reason: DropReason,
    pub event_reason: &'a str,
    pub object: &'a str,
    pub error: Option<&'a dyn std::fmt::Display>,
}

impl EventDropped<'_> {
    pub fn emit(&self, metrics: &EventerMetrics) {
        let error = self.error.map(|e| e.to_string());
        match self.reason {
            // The spam filter dropping events is its job, not news.
            DropReason::SpamFilter => tracing::debug!(
                reason = self.reason.as_str(),
                event_reason = self.event_reason,
                object = self.object,
                "event dropped"
            ),
            _ => tracing::warn!(
                reason = self.reason.as_str(),
                event_reason = self.event_reason,
                object = self.object,
                error,
                "event dropped"
            ),
        }
        metrics
            .dropped
            .get_or_create(&DropLabels { reason: self.reason })
            .inc();
    }
}

/// A write failed on a transport error and will be tried again.
pub struct EventWriteRetried<'a> {
    pub attempt: u32,
    pub error: &'a dyn std::fmt::Display,
}

impl EventWriteRetried<'_> {
    pub fn emit(&self, metrics: &EventerMetrics) {
        tracing::debug!(attempt = self.attempt, error = %self.error, "event write failed, retrying");
        metrics.retries.inc();
    }
}

/// The depth of the recorder's queue changed.
pub struct QueueDepth(pub usize);

impl QueueDepth {
    pub fn emit(&self, metrics: &EventerMetrics) {
        metrics.queued.set(i64::try_from(self.0).unwrap_or(i64::MAX));
    }
}

/// The TTL deleted an event.
pub struct EventExpired<'a> {
    pub namespace: &'a str,
    pub name: &'a str,
}

impl EventExpired<'_> {
    pub fn emit(&self, metrics: &EventerMetrics) {
        tracing::trace!(namespace = self.namespace, name = self.name, "event expired");
        metrics.expired.inc();
    }
}
