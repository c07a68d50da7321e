//! The control plane's telemetry: one struct per thing that happens, each logging and updating its metric
//! together. Metric names follow kube-apiserver's, so existing dashboards and alerts work unchanged.

use std::time::Duration;

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::registry::Registry;

/// kube-apiserver's request latency buckets.
const LATENCY_BUCKETS: [f64; 19] = [
    0.005, 0.025, 0.05, 0.1, 0.2, 0.4, 0.6, 0.8, 1.0, 1.25, 1.5, 2.0, 3.0, 4.0, 5.0, 6.0, 8.0, 10.0, 60.0,
];

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct RequestLabels {
    pub verb: &'static str,
    pub group: &'static str,
    pub version: &'static str,
    pub resource: &'static str,
    pub subresource: &'static str,
    pub scope: &'static str,
    pub component: &'static str,
    pub code: u16,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct DurationLabels {
    pub verb: &'static str,
    pub group: &'static str,
    pub version: &'static str,
    pub resource: &'static str,
    pub subresource: &'static str,
    pub scope: &'static str,
    pub component: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct LongRunningLabels {
    pub verb: &'static str,
    pub group: &'static str,
    pub version: &'static str,
    pub resource: &'static str,
    pub scope: &'static str,
    pub component: &'static str,
}

/// The API server's metric families.
#[derive(Clone)]
pub struct ApiMetrics {
    requests: Family<RequestLabels, Counter>,
    durations: Family<DurationLabels, Histogram, fn() -> Histogram>,
    longrunning: Family<LongRunningLabels, Gauge>,
    pub store_revision: Gauge,
    pub store_size_bytes: Gauge,
}

impl ApiMetrics {
    pub fn register(registry: &mut Registry) -> Self {
        let metrics = ApiMetrics {
            requests: Family::default(),
            durations: Family::new_with_constructor(|| Histogram::new(LATENCY_BUCKETS)),
            longrunning: Family::default(),
            store_revision: Gauge::default(),
            store_size_bytes: Gauge::default(),
        };
        registry.register(
            "apiserver_request",
            "Counter of apiserver requests broken out for each verb, group, version, resource, scope, component, and HTTP response code.",
            metrics.requests.clone(),
        );
        registry.register(
            "apiserver_request_duration_seconds",
            "Response latency distribution in seconds for each verb, group, version, resource, subresource, scope and component.",
            metrics.durations.clone(),
        );
        registry.register(
            "apiserver_longrunning_requests",
            "Gauge of all active long-running apiserver requests broken out by verb, group, version, resource, scope and component.",
            metrics.longrunning.clone(),
        );
        registry.register(
            "glasshouse_store_revision",
            "The store's current revision (the newest resourceVersion).",
            metrics.store_revision.clone(),
        );
        registry.register(
            "apiserver_storage_size_bytes",
            "Size of the storage database file physically allocated in bytes.",
            metrics.store_size_bytes.clone(),
        );
        metrics
    }
}

/// What a request was, for its metrics and its log line. Handlers attach it to their response.
#[derive(Clone, Copy, Debug, Default)]
pub struct RequestInfo {
    pub verb: &'static str,
    pub group: &'static str,
    pub version: &'static str,
    pub resource: &'static str,
    pub subresource: &'static str,
    /// `resource`, `namespace` or `cluster` (upstream's scope label).
    pub scope: &'static str,
}

/// An API request finished.
pub struct RequestCompleted<'a> {
    pub info: RequestInfo,
    pub method: &'a str,
    pub path: &'a str,
    pub code: u16,
    pub elapsed: Duration,
}

impl RequestCompleted<'_> {
    pub fn emit(&self, metrics: &ApiMetrics) {
        let i = self.info;
        let verb = if i.verb.is_empty() {
            method_verb(self.method)
        } else {
            i.verb
        };
        metrics
            .requests
            .get_or_create(&RequestLabels {
                verb,
                group: i.group,
                version: i.version,
                resource: i.resource,
                subresource: i.subresource,
                scope: i.scope,
                component: "apiserver",
                code: self.code,
            })
            .inc();
        // Watches last as long as they last; their duration says nothing of latency.
        if verb != "WATCH" {
            metrics
                .durations
                .get_or_create(&DurationLabels {
                    verb,
                    group: i.group,
                    version: i.version,
                    resource: i.resource,
                    subresource: i.subresource,
                    scope: i.scope,
                    component: "apiserver",
                })
                .observe(self.elapsed.as_secs_f64());
        }
        let elapsed_ms = self.elapsed.as_secs_f64() * 1000.0;
        if self.code >= 500 {
            tracing::warn!(
                verb,
                resource = i.resource,
                path = self.path,
                code = self.code,
                elapsed_ms,
                "api request failed"
            );
        } else {
            tracing::debug!(
                verb,
                resource = i.resource,
                path = self.path,
                code = self.code,
                elapsed_ms,
                "api request"
            );
        }
    }
}

/// Upstream's verb label for requests not resolved to a resource.
fn method_verb(method: &str) -> &'static str {
    match method {
        "GET" | "HEAD" => "GET",
        "POST" => "POST",
        "PUT" => "PUT",
        "PATCH" => "PATCH",
        "DELETE" => "DELETE",
        _ => "OTHER",
    }
}

/// Counts a watch in `apiserver_longrunning_requests` while it lives.
pub struct WatchGuard {
    gauge: Gauge,
}

impl WatchGuard {
    pub fn start(metrics: &ApiMetrics, info: RequestInfo) -> Self {
        let gauge = metrics
            .longrunning
            .get_or_create(&LongRunningLabels {
                verb: "WATCH",
                group: info.group,
                version: info.version,
                resource: info.resource,
                scope: info.scope,
                component: "apiserver",
            })
            .clone();
        gauge.inc();
        tracing::debug!(resource = info.resource, "watch started");
        WatchGuard { gauge }
    }
}

impl Drop for WatchGuard {
    fn drop(&mut self) {
        self.gauge.dec();
        tracing::debug!("watch ended");
    }
}
