//! The control plane's telemetry: one struct per thing that happens, each logging and updating its metric
//! together. Metric names follow kube-apiserver's, so existing dashboards and alerts work unchanged.

use std::sync::Arc;
use std::time::Duration;

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::registry::Registry;

use crate::exposition::{HistogramFamily, LabelText, push_label};

/// kube-apiserver's request latency buckets.
const LATENCY_BUCKETS: [f64; 19] = [
    0.005, 0.025, 0.05, 0.1, 0.2, 0.4, 0.6, 0.8, 1.0, 1.25, 1.5, 2.0, 3.0, 4.0, 5.0, 6.0, 8.0, 10.0, 60.0,
];

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct RequestLabels {
    #[prometheus(flatten)]
    pub request: DurationLabels,
    pub code: u16,
}

/// What a request was, as kube-apiserver's request metrics label it.
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

impl LabelText for DurationLabels {
    fn write(&self, out: &mut String) {
        for (name, value) in [
            ("verb", self.verb),
            ("group", self.group),
            ("version", self.version),
            ("resource", self.resource),
            ("subresource", self.subresource),
            ("scope", self.scope),
            ("component", self.component),
        ] {
            push_label(out, name, value);
        }
    }
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
    /// The family with the most series of `/metrics`, written by `exposition` (see `HistogramFamily`);
    /// `/metrics` appends it to the registry's.
    pub durations: Arc<HistogramFamily<DurationLabels>>,
    longrunning: Family<LongRunningLabels, Gauge>,
    pub store_revision: Gauge,
    pub store_size_bytes: Gauge,
}

impl ApiMetrics {
    pub fn register(registry: &mut Registry) -> Self {
        let metrics = ApiMetrics {
            requests: Family::default(),
            durations: Arc::new(HistogramFamily::new(
                "apiserver_request_duration_seconds",
                "Response latency distribution in seconds for each verb, group, version, resource, subresource, scope and component",
                &LATENCY_BUCKETS,
            )),
            longrunning: Family::default(),
            store_revision: Gauge::default(),
            store_size_bytes: Gauge::default(),
        };
        registry.register(
            "apiserver_request",
            "Counter of apiserver requests broken out for each verb, group, version, resource, scope, component, and HTTP response code",
            metrics.requests.clone(),
        );
        registry.register(
            "apiserver_longrunning_requests",
            "Gauge of all active long-running apiserver requests broken out by verb, group, version, resource, scope and component",
            metrics.longrunning.clone(),
        );
        registry.register(
            "glasshouse_store_revision",
            "The store's current revision (the newest resourceVersion)",
            metrics.store_revision.clone(),
        );
        registry.register(
            "apiserver_storage_size_bytes",
            "Size of the storage database file physically allocated in bytes",
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
        let request = DurationLabels {
            verb,
            group: i.group,
            version: i.version,
            resource: i.resource,
            subresource: i.subresource,
            scope: i.scope,
            component: "apiserver",
        };
        // Watches last as long as they last; their duration says nothing of latency.
        if verb != "WATCH" {
            metrics.durations.observe(&request, self.elapsed.as_secs_f64());
        }
        metrics
            .requests
            .get_or_create(&RequestLabels {
                request,
                code: self.code,
            })
            .inc();
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

/// Reconcile and scheduling latency buckets, seconds (controller-runtime's).
const RECONCILE_BUCKETS: [f64; 12] = [
    0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0,
];

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ReconcileLabels {
    pub controller: &'static str,
    /// `success` or `error`.
    pub result: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ControllerLabel {
    pub controller: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct HpaOutcomeLabels {
    /// `rescaled`, `unchanged`, `held` (the metrics asked for a change that stabilization or a limit
    /// held back), `failed_metrics`, `failed_scale`.
    pub outcome: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ScheduleLabels {
    /// `scheduled`, `unschedulable` or `error` (kube-scheduler's).
    pub result: &'static str,
    pub profile: &'static str,
}

/// The controllers' and the scheduler's metric families, in controller-runtime's and kube-scheduler's
/// names.
#[derive(Clone)]
pub struct ControllerMetrics {
    reconciles: Family<ReconcileLabels, Counter>,
    reconcile_time: Family<ControllerLabel, Histogram, fn() -> Histogram>,
    attempts: Family<ScheduleLabels, Counter>,
    attempt_time: Family<ScheduleLabels, Histogram, fn() -> Histogram>,
    hpa_outcomes: Family<HpaOutcomeLabels, Counter>,
    hpa_metric_age: Histogram,
}

impl ControllerMetrics {
    pub fn register(registry: &mut Registry) -> Self {
        let metrics = ControllerMetrics {
            reconciles: Family::default(),
            reconcile_time: Family::new_with_constructor(|| Histogram::new(RECONCILE_BUCKETS)),
            attempts: Family::default(),
            attempt_time: Family::new_with_constructor(|| Histogram::new(RECONCILE_BUCKETS)),
            hpa_outcomes: Family::default(),
            hpa_metric_age: Histogram::new([0.5, 1.0, 2.0, 5.0, 10.0, 15.0, 30.0, 60.0, 120.0]),
        };
        registry.register(
            "controller_runtime_reconcile",
            "Total number of reconciliations per controller",
            metrics.reconciles.clone(),
        );
        registry.register(
            "controller_runtime_reconcile_time_seconds",
            "Length of time per reconciliation per controller",
            metrics.reconcile_time.clone(),
        );
        registry.register(
            "scheduler_schedule_attempts",
            "Number of attempts to schedule pods, by the result",
            metrics.attempts.clone(),
        );
        registry.register(
            "scheduler_scheduling_attempt_duration_seconds",
            "Scheduling attempt latency in seconds (scheduling algorithm + binding)",
            metrics.attempt_time.clone(),
        );
        registry.register(
            "glasshouse_hpa_reconciles",
            "HorizontalPodAutoscaler reconciles, by outcome",
            metrics.hpa_outcomes.clone(),
        );
        registry.register(
            "glasshouse_hpa_rescale_metric_age_seconds",
            "Age of the newest metric sample behind a rescale when the HPA wrote the target's scale (the controller's part of the reaction time)",
            metrics.hpa_metric_age.clone(),
        );
        metrics
    }
}

/// The HPA controller finished one HorizontalPodAutoscaler's reconcile.
pub struct HpaReconciled {
    pub outcome: &'static str,
    /// For a rescale: how old the newest metric sample it rests on was.
    pub metric_age: Option<Duration>,
}

impl HpaReconciled {
    pub fn emit(&self, metrics: &ControllerMetrics) {
        metrics
            .hpa_outcomes
            .get_or_create(&HpaOutcomeLabels {
                outcome: self.outcome,
            })
            .inc();
        if let Some(age) = self.metric_age {
            metrics.hpa_metric_age.observe(age.as_secs_f64());
        }
    }
}

/// A controller finished reconciling one object (or one pass).
pub struct ReconcileFinished<'a> {
    pub controller: &'static str,
    pub elapsed: Duration,
    pub error: Option<&'a dyn std::fmt::Display>,
}

impl ReconcileFinished<'_> {
    pub fn emit(&self, metrics: &ControllerMetrics) {
        let result = if self.error.is_some() { "error" } else { "success" };
        if let Some(error) = self.error {
            tracing::debug!(controller = self.controller, error = %error, "reconcile failed");
        }
        metrics
            .reconciles
            .get_or_create(&ReconcileLabels {
                controller: self.controller,
                result,
            })
            .inc();
        let labels = ControllerLabel {
            controller: self.controller,
        };
        metrics
            .reconcile_time
            .get_or_create(&labels)
            .observe(self.elapsed.as_secs_f64());
    }
}

/// The scheduler tried to place a pod.
pub struct SchedulingAttempted<'a> {
    /// `scheduled`, `unschedulable` or `error`.
    pub result: &'static str,
    pub pod: &'a str,
    pub elapsed: Duration,
}

impl SchedulingAttempted<'_> {
    pub fn emit(&self, metrics: &ControllerMetrics) {
        tracing::debug!(
            pod = self.pod,
            result = self.result,
            elapsed_ms = self.elapsed.as_secs_f64() * 1000.0,
            "scheduling attempt"
        );
        let labels = ScheduleLabels {
            result: self.result,
            profile: crate::scheduler::NAME,
        };
        metrics.attempts.get_or_create(&labels).inc();
        metrics
            .attempt_time
            .get_or_create(&labels)
            .observe(self.elapsed.as_secs_f64());
    }
}

/// Upstream's `kubelet_pod_start_duration_seconds` buckets.
const POD_START_BUCKETS: [f64; 16] = [
    0.5, 1.0, 2.0, 3.0, 4.0, 5.0, 6.0, 8.0, 10.0, 20.0, 30.0, 45.0, 60.0, 120.0, 300.0, 600.0,
];

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ContainerStateLabel {
    pub container_state: &'static str,
}

/// The node agent's metrics, under the kubelet's names.
#[derive(Clone)]
pub struct NodeMetrics {
    pod_start: Histogram,
    running_pods: Gauge,
    containers: Family<ContainerStateLabel, Gauge>,
}

impl NodeMetrics {
    pub fn register(registry: &mut Registry) -> Self {
        let metrics = NodeMetrics {
            pod_start: Histogram::new(POD_START_BUCKETS),
            running_pods: Gauge::default(),
            containers: Family::default(),
        };
        registry.register(
            "kubelet_pod_start_duration_seconds",
            "Duration in seconds from a pod's creation to all its containers running",
            metrics.pod_start.clone(),
        );
        registry.register(
            "kubelet_running_pods",
            "Number of pods that have a running container on this node",
            metrics.running_pods.clone(),
        );
        registry.register(
            "kubelet_running_containers",
            "Number of containers on this node, by state",
            metrics.containers.clone(),
        );
        metrics
    }

    /// A pod ran all its containers for the first time, `seconds` after its creation.
    pub fn pod_started(&self, seconds: f64) {
        tracing::debug!(seconds, "pod started");
        self.pod_start.observe(seconds);
    }

    /// The node's pods and containers as counted by the agent.
    pub fn set_counts(&self, running_pods: i64, running: i64, exited: i64) {
        self.running_pods.set(running_pods);
        for (state, n) in [("running", running), ("exited", exited)] {
            self.containers
                .get_or_create(&ContainerStateLabel {
                    container_state: state,
                })
                .set(n);
        }
    }
}
