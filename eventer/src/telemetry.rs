//! The eventer's own telemetry: one struct per thing that happens, each logging with structured fields
//! and moving its metric together. Every metric name of the crate's own telemetry is declared here (the
//! Prometheus sink's `glasshouse_events_total` is the sink's output, declared with it), and every label
//! value comes from a closed vocabulary or the configured sink names.

use std::fmt::Write;

use prometheus_client::encoding::{EncodeLabelSet, EncodeLabelValue, LabelValueEncoder};
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::Histogram;
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
            "Events written to the API by the recorder, by operation",
            metrics.written.clone(),
        );
        registry.register(
            "glasshouse_event_recorder_dropped",
            "Events the recorder did not write, by reason",
            metrics.dropped.clone(),
        );
        registry.register(
            "glasshouse_event_recorder_retries",
            "Event writes retried after a transport error",
            metrics.retries.clone(),
        );
        registry.register(
            "glasshouse_event_recorder_queue_depth",
            "Events waiting to be correlated and written",
            metrics.queued.clone(),
        );
        registry.register(
            "glasshouse_events_expired",
            "Events deleted by the event TTL",
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

/// Why the shipper did not deliver an event to a sink.
#[derive(Clone, Copy, Debug, Hash, PartialEq, Eq)]
pub enum ShipDropReason {
    /// A drop rule matched it (for every sink).
    DropRule,
    /// No route matched it (for every sink).
    NoRoute,
    /// The sink's queue was full.
    QueueFull,
    /// The sink did not take it within the maximum retry age.
    MaxRetryAge,
    /// Its record could not be read back from the queue.
    Corrupt,
    /// The receiver refused it for good (a 4xx answer other than 408 and 429).
    Rejected,
}

impl ShipDropReason {
    pub fn as_str(self) -> &'static str {
        match self {
            ShipDropReason::DropRule => "drop_rule",
            ShipDropReason::NoRoute => "no_route",
            ShipDropReason::QueueFull => "queue_full",
            ShipDropReason::MaxRetryAge => "max_retry_age",
            ShipDropReason::Corrupt => "corrupt",
            ShipDropReason::Rejected => "rejected",
        }
    }
}

impl EncodeLabelValue for ShipDropReason {
    fn encode(&self, encoder: &mut LabelValueEncoder) -> std::fmt::Result {
        encoder.write_str(self.as_str())
    }
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct SinkLabels {
    sink: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct UnroutedLabels {
    reason: ShipDropReason,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct SinkDropLabels {
    sink: String,
    reason: ShipDropReason,
}

/// Delivery lag buckets, seconds: from well under a second (the normal case) to the day a sink may be
/// down for.
const LAG_BUCKETS: [f64; 14] = [
    0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 60.0, 600.0, 3600.0,
];

/// The shipper's metric families; every sink label value is a configured sink name.
#[derive(Clone)]
pub struct ShipperMetrics {
    received: Counter,
    unrouted: Family<UnroutedLabels, Counter>,
    relists: Counter,
    delivered: Family<SinkLabels, Counter>,
    failed: Family<SinkLabels, Counter>,
    retries: Family<SinkLabels, Counter>,
    dropped: Family<SinkDropLabels, Counter>,
    queued: Family<SinkLabels, Gauge>,
    lag: Family<SinkLabels, Histogram, fn() -> Histogram>,
}

impl ShipperMetrics {
    pub fn register(registry: &mut Registry) -> Self {
        let metrics = ShipperMetrics {
            received: Counter::default(),
            unrouted: Family::default(),
            relists: Counter::default(),
            delivered: Family::default(),
            failed: Family::default(),
            retries: Family::default(),
            dropped: Family::default(),
            queued: Family::default(),
            lag: Family::new_with_constructor(|| Histogram::new(LAG_BUCKETS)),
        };
        registry.register(
            "glasshouse_event_shipper_received",
            "Event changes the shipper took from the API",
            metrics.received.clone(),
        );
        registry.register(
            "glasshouse_event_shipper_unrouted",
            "Event changes shipped to no sink, by reason (a drop rule matched, or no route did)",
            metrics.unrouted.clone(),
        );
        registry.register(
            "glasshouse_event_shipper_relists",
            "Times the shipper listed events again (at its first start, or after its resume point expired)",
            metrics.relists.clone(),
        );
        registry.register(
            "glasshouse_event_sink_delivered",
            "Events a sink took",
            metrics.delivered.clone(),
        );
        registry.register(
            "glasshouse_event_sink_failed",
            "Deliveries to a sink that failed (each is retried)",
            metrics.failed.clone(),
        );
        registry.register(
            "glasshouse_event_sink_retries",
            "Events whose delivery to a sink failed and will be tried again",
            metrics.retries.clone(),
        );
        registry.register(
            "glasshouse_event_sink_dropped",
            "Events not delivered to a sink, by reason",
            metrics.dropped.clone(),
        );
        registry.register(
            "glasshouse_event_sink_queue_depth",
            "Events waiting on disk for a sink",
            metrics.queued.clone(),
        );
        registry.register(
            "glasshouse_event_sink_delivery_lag_seconds",
            "Time from an event reaching the shipper to a sink taking it",
            metrics.lag.clone(),
        );
        metrics
    }

    pub fn delivered(&self, sink: &str) -> u64 {
        self.delivered
            .get_or_create(&SinkLabels { sink: sink.into() })
            .get()
    }

    pub fn dropped(&self, sink: &str, reason: ShipDropReason) -> u64 {
        self.dropped
            .get_or_create(&SinkDropLabels {
                sink: sink.into(),
                reason,
            })
            .get()
    }
}

/// Event changes arrived from the API.
pub struct EventsReceived(pub usize);

impl EventsReceived {
    pub fn emit(&self, metrics: &ShipperMetrics) {
        metrics.received.inc_by(self.0 as u64);
    }
}

/// The shipper lists events again.
pub struct EventsRelisted<'a> {
    pub from: u64,
    pub why: &'a str,
}

impl EventsRelisted<'_> {
    pub fn emit(&self, metrics: &ShipperMetrics) {
        tracing::info!(
            from = self.from,
            why = self.why,
            "listing events to resume shipping"
        );
        metrics.relists.inc();
    }
}

/// Events a sink (or, for the routing reasons, every sink) will never get.
pub struct EventsNotShipped<'a> {
    /// None for events no sink gets (drop rules, no route).
    pub sink: Option<&'a str>,
    pub reason: ShipDropReason,
    pub count: u64,
}

impl EventsNotShipped<'_> {
    pub fn emit(&self, metrics: &ShipperMetrics) {
        if self.count == 0 {
            return;
        }
        match self.sink {
            None => {
                metrics
                    .unrouted
                    .get_or_create(&UnroutedLabels { reason: self.reason })
                    .inc_by(self.count);
            }
            Some(sink) => {
                tracing::warn!(
                    sink,
                    reason = self.reason.as_str(),
                    count = self.count,
                    "events dropped"
                );
                let labels = SinkDropLabels {
                    sink: sink.into(),
                    reason: self.reason,
                };
                metrics.dropped.get_or_create(&labels).inc_by(self.count);
            }
        }
    }
}

/// A sink took a batch.
pub struct EventsDelivered<'a> {
    pub sink: &'a str,
    pub count: u64,
    /// Per event, seconds since it reached the shipper.
    pub lags: &'a [f64],
}

impl EventsDelivered<'_> {
    pub fn emit(&self, metrics: &ShipperMetrics) {
        tracing::trace!(sink = self.sink, count = self.count, "events delivered");
        let labels = SinkLabels {
            sink: self.sink.into(),
        };
        metrics.delivered.get_or_create(&labels).inc_by(self.count);
        let lag = metrics.lag.get_or_create(&labels);
        for seconds in self.lags {
            lag.observe(*seconds);
        }
    }
}

/// A delivery failed; it will be tried again after `backoff`.
pub struct DeliveryFailed<'a> {
    pub sink: &'a str,
    pub error: &'a dyn std::fmt::Display,
    pub backoff: std::time::Duration,
    /// Failures in a row so far.
    pub failures: u32,
    /// Events in the failed batch, all to be tried again.
    pub events: u64,
}

impl DeliveryFailed<'_> {
    pub fn emit(&self, metrics: &ShipperMetrics) {
        // The first failure of a run is news; the rest of the run is in the metrics.
        if self.failures == 1 {
            tracing::warn!(sink = self.sink, error = %self.error, "event delivery failed, retrying");
        } else {
            tracing::debug!(sink = self.sink, error = %self.error, failures = self.failures, backoff_ms = self.backoff.as_millis() as u64, "event delivery failed again");
        }
        let labels = SinkLabels {
            sink: self.sink.into(),
        };
        metrics.failed.get_or_create(&labels).inc();
        metrics.retries.get_or_create(&labels).inc_by(self.events);
    }
}

/// The depth of a sink's queue changed.
pub struct SinkQueueDepth<'a> {
    pub sink: &'a str,
    pub depth: u64,
}

impl SinkQueueDepth<'_> {
    pub fn emit(&self, metrics: &ShipperMetrics) {
        let gauge = metrics.queued.get_or_create(&SinkLabels {
            sink: self.sink.into(),
        });
        gauge.set(i64::try_from(self.depth).unwrap_or(i64::MAX));
    }
}
