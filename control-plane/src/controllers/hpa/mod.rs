//! The HorizontalPodAutoscaler controller (k/k `pkg/controller/podautoscaler/horizontal.go`;
//! `spec/hpa.md`). Every sync period each HPA is reconciled: the target's `/scale` is read, every
//! metric of `spec.metrics` proposes a replica count from the metrics APIs (read through the API
//! server, as upstream reads them), the largest proposal is stabilized and rate-limited
//! ([`behavior`]), written to `/scale`, and the status, conditions and events say what happened with
//! upstream's texts.
//!
//! Beyond upstream, every rescale and every refusal is kept as an explained [`decisions::Decision`],
//! served as the HPA's `decisions` subresource and summed up in the rescale event.
//!
//! The default sync period is one second (upstream: 15 s, `--hpa-sync-period 15s` gives it back):
//! with the collector's one-second resolution a load step reaches `/scale` within a few seconds.

pub mod behavior;
pub mod decisions;
pub mod metrics;
pub mod replicas;
#[cfg(test)]
mod tests;

use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use eventer::Recorder;
use jiff::Timestamp;
use k8s_openapi::api::autoscaling::v1::Scale;
use k8s_openapi::api::autoscaling::v2::{
    ContainerResourceMetricStatus, CrossVersionObjectReference, ExternalMetricStatus,
    HorizontalPodAutoscaler, HorizontalPodAutoscalerCondition, HorizontalPodAutoscalerStatus,
    MetricIdentifier, MetricSpec, MetricStatus, MetricTarget, MetricValueStatus, ObjectMetricStatus,
    PodsMetricStatus, ResourceMetricStatus,
};
use k8s_openapi::api::core::v1::Pod;
use k8s_openapi::apimachinery::pkg::api::resource::Quantity;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{LabelSelector, Time};
use kube::api::{Api, ListParams, Patch, PatchParams};
use kube::{Resource, ResourceExt};
use tokio_util::sync::CancellationToken;

use self::behavior::{Behavior, History, Normalized};
use self::decisions::{Decision, Decisions, MetricDecision};
use self::metrics::MetricsClient;
use self::replicas::{PodInfo, Proposal, Ready, Settings, Tolerances};
use crate::api::selectors::LabelSelector as ParsedSelector;
use crate::telemetry::{ControllerMetrics, HpaReconciled, ReconcileFinished};

/// The event source of the controller's events (kube-controller-manager's).
pub const COMPONENT: &str = "horizontal-pod-autoscaler";
/// HPAs reconciled at once (`ConcurrentHorizontalPodAutoscalerSyncs`).
const WORKERS: usize = 5;
/// How long one reconcile may take before it is given up until the next sync.
const RECONCILE_TIMEOUT: Duration = Duration::from_secs(10);

/// The controller's settings (kube-controller-manager's `--horizontal-pod-autoscaler-*` flags).
#[derive(Clone, Debug)]
pub struct HpaConfig {
    pub sync_period: Duration,
    pub tolerance: f64,
    pub downscale_stabilization: Duration,
    pub cpu_initialization_period: Duration,
    pub initial_readiness_delay: Duration,
}

impl Default for HpaConfig {
    fn default() -> HpaConfig {
        HpaConfig {
            sync_period: Duration::from_secs(1),
            tolerance: 0.1,
            downscale_stabilization: Duration::from_secs(300),
            cpu_initialization_period: Duration::from_secs(300),
            initial_readiness_delay: Duration::from_secs(30),
        }
    }
}

pub struct Context {
    pub client: kube::Client,
    pub recorder: Recorder,
    pub config: HpaConfig,
    pub metrics: Arc<dyn MetricsClient>,
    pub decisions: Arc<Decisions>,
    histories: Histories,
    /// Every HPA's last target selector, by `namespace/name`, to find pods two HPAs claim.
    selectors: Mutex<HashMap<String, ParsedSelector>>,
}

/// Every HPA's recommendations and scale events, by `namespace/name` (upstream's key).
#[derive(Debug, Default)]
pub struct Histories(Mutex<HashMap<String, History>>);

impl Histories {
    fn with<T>(&self, key: &str, f: impl FnOnce(&mut History) -> T) -> T {
        let mut histories = self.0.lock().unwrap_or_else(|e| e.into_inner());
        f(histories.entry(key.to_string()).or_default())
    }

    fn retain(&self, keys: &HashSet<String>) {
        let mut histories = self.0.lock().unwrap_or_else(|e| e.into_inner());
        histories.retain(|k, _| keys.contains(k));
    }
}

impl Context {
    pub fn new(
        client: kube::Client,
        recorder: Recorder,
        config: HpaConfig,
        decisions: Arc<Decisions>,
    ) -> Context {
        Context {
            metrics: Arc::new(metrics::ApiMetrics {
                client: client.clone(),
            }),
            client,
            recorder,
            config,
            decisions,
            histories: Histories::default(),
            selectors: Mutex::default(),
        }
    }
}

/// Reconciles every HPA once per sync period until `shutdown`.
pub async fn run(context: Arc<Context>, metrics: ControllerMetrics, shutdown: CancellationToken) {
    use futures::StreamExt;
    let hpas = super::cache::<HorizontalPodAutoscaler>(
        &context.client,
        kube::runtime::watcher::Config::default(),
        &shutdown,
        "horizontal-pod-autoscaler",
        |_| {},
    );
    let mut tick = tokio::time::interval(context.config.sync_period);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = shutdown.cancelled() => return,
            _ = tick.tick() => {}
        }
        let all = hpas.state();
        let live: HashSet<String> = all.iter().map(|h| history_key(h)).collect();
        context.decisions.retain(&live);
        context.histories.retain(&live);
        let keys: HashSet<String> = all.iter().map(|h| key(h)).collect();
        context
            .selectors
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .retain(|k, _| keys.contains(k));
        futures::stream::iter(all)
            .for_each_concurrent(WORKERS, |hpa| {
                let (context, metrics) = (context.clone(), metrics.clone());
                async move {
                    if hpa.metadata.deletion_timestamp.is_some() {
                        return;
                    }
                    let started = std::time::Instant::now();
                    // A task of its own: a panic in one HPA's reconcile is that reconcile's failure.
                    let task_metrics = metrics.clone();
                    let span = tracing::info_span!(
                        "reconcile",
                        controller = "horizontalpodautoscaler",
                        hpa = %key(&hpa)
                    );
                    let task = tokio::spawn(async move {
                        let reconciled =
                            tracing::Instrument::instrument(reconcile(&context, &hpa, &task_metrics), span);
                        tokio::time::timeout(RECONCILE_TIMEOUT, reconciled)
                            .await
                            .unwrap_or_else(|_| Err("reconcile timed out".into()))
                    });
                    let result = task
                        .await
                        .unwrap_or_else(|e| Err(format!("reconcile failed: {e}")));
                    let error = result.as_ref().err().map(|e| e as &dyn std::fmt::Display);
                    ReconcileFinished {
                        controller: "horizontalpodautoscaler",
                        elapsed: started.elapsed(),
                        error,
                    }
                    .emit(&metrics);
                }
            })
            .await;
    }
}

fn key(hpa: &HorizontalPodAutoscaler) -> String {
    format!("{}/{}", hpa.namespace().unwrap_or_default(), hpa.name_any())
}

/// What an HPA's recommendations, scale events and decisions are kept under: its uid, so that one
/// deleted and created again under its name starts afresh.
fn history_key(hpa: &HorizontalPodAutoscaler) -> String {
    hpa.metadata.uid.clone().unwrap_or_else(|| key(hpa))
}

/// An API error's message (a `Status`'s, or the transport's).
pub(crate) fn api_message(e: kube::Error) -> String {
    match e {
        kube::Error::Api(status) => status.message,
        other => other.to_string(),
    }
}

/// The served resource of a kind in a group (in `version`, when one is given) that has `/scale` if
/// `scale` asks for it.
pub(crate) fn resource_of(
    group: &str,
    version: Option<&str>,
    kind: &str,
    scale: bool,
) -> Option<&'static crate::api::resources::ResourceType> {
    crate::api::resources::RESOURCES.iter().find(|r| {
        r.group == group
            && r.kind == kind
            && (!scale || r.scale)
            && version.is_none_or(|v| v.is_empty() || r.version == v)
    })
}

/// A condition to set, `setCondition`'s arguments.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Condition {
    pub type_: &'static str,
    pub status: bool,
    pub reason: String,
    pub message: String,
}

fn condition(type_: &'static str, status: bool, reason: &str, message: impl Into<String>) -> Condition {
    Condition {
        type_,
        status,
        reason: reason.to_string(),
        message: message.into(),
    }
}

/// `setConditionInList`: the transition time moves only when the status changes.
fn set_condition(list: &mut Vec<HorizontalPodAutoscalerCondition>, c: &Condition, now: Timestamp) {
    let status = if c.status { "True" } else { "False" }.to_string();
    let index = match list.iter().position(|e| e.type_ == c.type_) {
        Some(i) => i,
        None => {
            list.push(HorizontalPodAutoscalerCondition {
                type_: c.type_.to_string(),
                ..Default::default()
            });
            list.len() - 1
        }
    };
    let existing = &mut list[index];
    if existing.status != status {
        existing.last_transition_time = Some(Time(now));
    }
    existing.status = status;
    existing.reason = Some(c.reason.clone());
    existing.message = Some(c.message.clone());
}

/// An event to record.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Event {
    pub warning: bool,
    pub reason: &'static str,
    pub message: String,
}

/// What the controller saw of the target.
#[derive(Clone, Debug)]
pub struct Target {
    pub spec_replicas: i32,
    pub status_replicas: i32,
    pub selector: String,
}

/// What one reconcile decided, before anything is written.
#[derive(Debug)]
pub struct Plan {
    pub desired: i32,
    pub rescale: bool,
    pub reason: String,
    pub statuses: Vec<MetricStatus>,
    /// In the order upstream sets them; the last of a type wins.
    pub conditions: Vec<Condition>,
    pub events: Vec<Event>,
    pub decision: Option<Decision>,
    /// Metrics failed so that nothing can be decided: the status keeps its desired count.
    pub failed: Option<String>,
    /// Some metrics failed but the others decided (the reconcile still reports the error).
    pub partial: Option<String>,
    /// The newest metric sample the proposals rest on (per-pod metrics).
    pub metric_time: Option<Timestamp>,
}

/// The settings of the calculation for `hpa`: the controller's, with the HPA's own tolerances.
fn settings(config: &HpaConfig, hpa: &HorizontalPodAutoscaler) -> Settings {
    let behavior = hpa.spec.as_ref().and_then(|s| s.behavior.as_ref());
    let tolerance = |rules: Option<&k8s_openapi::api::autoscaling::v2::HPAScalingRules>| {
        rules
            .and_then(|r| r.tolerance.as_ref())
            .and_then(|q| crate::scheduler::fit::milli_value(&q.0))
            .map_or(config.tolerance, |milli| milli as f64 / 1000.0)
    };
    Settings {
        tolerances: Tolerances {
            down: tolerance(behavior.and_then(|b| b.scale_down.as_ref())),
            up: tolerance(behavior.and_then(|b| b.scale_up.as_ref())),
        },
        cpu_initialization_period: config.cpu_initialization_period,
        initial_readiness_delay: config.initial_readiness_delay,
    }
}

/// A milli-value as a DecimalSI quantity in canonical form (`resource.NewMilliQuantity(v,
/// DecimalSI).String()`): `250m`, `3`, `2k`.
pub fn milli_quantity(milli: i64) -> Quantity {
    if milli % 1000 != 0 {
        return Quantity(format!("{milli}m"));
    }
    let mut value = milli / 1000;
    let mut suffix = "";
    for next in ["k", "M", "G", "T", "P", "E"] {
        if value == 0 || value % 1000 != 0 {
            break;
        }
        value /= 1000;
        suffix = next;
    }
    Quantity(format!("{value}{suffix}"))
}

/// A resource's quantity as upstream's status carries it (`buildQuantity`): memory in BinarySI
/// (`100Mi`), everything else in DecimalSI.
pub fn resource_quantity(resource: &str, milli: i64) -> Quantity {
    if resource != "memory" || milli % 1000 != 0 {
        return milli_quantity(milli);
    }
    let bytes = milli / 1000;
    for (suffix, shift) in [
        ("Ei", 60),
        ("Pi", 50),
        ("Ti", 40),
        ("Gi", 30),
        ("Mi", 20),
        ("Ki", 10),
    ] {
        let unit = 1i64 << shift;
        if bytes != 0 && bytes % unit == 0 {
            return Quantity(format!("{}{suffix}", bytes / unit));
        }
    }
    Quantity(bytes.to_string())
}

/// `%+v` of a `*metav1.LabelSelector`, as upstream's metric descriptions print it.
fn go_selector(selector: Option<&LabelSelector>) -> String {
    let Some(selector) = selector else {
        return "<nil>".into();
    };
    let labels: String = selector
        .match_labels
        .iter()
        .flatten()
        .map(|(k, v)| format!("{k}: {v},"))
        .collect();
    let expressions: String = selector
        .match_expressions
        .iter()
        .flatten()
        .map(|r| {
            format!(
                "LabelSelectorRequirement{{Key:{},Operator:{},Values:[{}],}},",
                r.key,
                r.operator,
                r.values.clone().unwrap_or_default().join(" ")
            )
        })
        .collect();
    format!(
        "&LabelSelector{{MatchLabels:map[string]string{{{labels}}},MatchExpressions:[]LabelSelectorRequirement{{{expressions}}},}}"
    )
}

/// A pod as the calculation sees it, with its request of `resource` (of `container` only, when
/// given); `Err` when the container is not in the pod.
fn pod_info(pod: &Pod, resource: &str, container: Option<&str>) -> Result<PodInfo, String> {
    let name = pod.name_any();
    let status = pod.status.clone().unwrap_or_default();
    let ready = status
        .conditions
        .iter()
        .flatten()
        .find(|c| c.type_ == "Ready")
        .map(|c| {
            (
                match c.status.as_str() {
                    "True" => Ready::True,
                    "False" => Ready::False,
                    _ => Ready::Unknown,
                },
                c.last_transition_time
                    .as_ref()
                    .map_or(Timestamp::UNIX_EPOCH, |t| t.0),
            )
        });
    let spec = pod.spec.clone().unwrap_or_default();
    let sidecars = spec
        .init_containers
        .iter()
        .flatten()
        .filter(|c| c.restart_policy.as_deref() == Some("Always"));
    let counted: Vec<&k8s_openapi::api::core::v1::Container> =
        spec.containers.iter().chain(sidecars).collect();
    let counted: Vec<_> = match container {
        Some(wanted) => {
            let found: Vec<_> = counted.into_iter().filter(|c| c.name == wanted).collect();
            if found.is_empty() {
                return Err(format!("container {wanted} not found in Pod {name}"));
            }
            found
        }
        None => counted,
    };
    let mut request = Ok(0i64);
    for c in counted {
        let value = c
            .resources
            .as_ref()
            .and_then(|r| r.requests.as_ref())
            .and_then(|r| r.get(resource))
            .and_then(|q| crate::scheduler::fit::milli_value(&q.0));
        request = match (request, value) {
            (Ok(sum), Some(v)) => Ok(sum.saturating_add(v.clamp(0, i128::from(i64::MAX)) as i64)),
            (Ok(_), None) => Err(c.name.clone()),
            (err, _) => err,
        };
    }
    Ok(PodInfo {
        name,
        phase: status.phase.unwrap_or_default(),
        deleting: pod.metadata.deletion_timestamp.is_some(),
        ready,
        start_time: status.start_time.map(|t| t.0),
        request_milli: request,
    })
}

fn pod_infos(pods: &[Pod], resource: &str, container: Option<&str>) -> Result<Vec<PodInfo>, String> {
    pods.iter().map(|p| pod_info(p, resource, container)).collect()
}

/// One metric's outcome (`computeReplicasForMetric`).
struct MetricOutcome {
    replicas: i32,
    description: String,
    status: MetricStatus,
    decision: MetricDecision,
}

impl MetricOutcome {
    /// A proposal of `replicas` from the metric `description`, its value against the target, and the
    /// pods it counted (per-pod metrics).
    fn new(
        replicas: i32,
        description: String,
        value: String,
        pods: Option<replicas::PodGroups>,
        status: MetricStatus,
    ) -> Self {
        MetricOutcome {
            replicas,
            decision: MetricDecision {
                metric: description.clone(),
                replicas: Some(replicas),
                error: None,
                value,
                pods,
            },
            description,
            status,
        }
    }
}

/// One metric's failure: the error (prefixed as upstream prefixes it per source type), the condition
/// it sets if it decides the reconcile, and the event recorded right away.
struct MetricFailure {
    error: String,
    condition: Condition,
    event: Event,
    description: String,
}

fn unable(reason: &'static str, error: &str) -> (Condition, Event) {
    (
        condition(
            "ScalingActive",
            false,
            reason,
            format!("the HPA was unable to compute the replica count: {error}"),
        ),
        Event {
            warning: true,
            reason,
            message: error.to_string(),
        },
    )
}

/// A target quantity in milli-units (`MilliValue`), held within i64.
fn milli(quantity: Option<&Quantity>) -> Option<i64> {
    quantity
        .and_then(|q| crate::scheduler::fit::milli_value(&q.0))
        .map(|v| v.clamp(i128::from(i64::MIN), i128::from(i64::MAX)) as i64)
}

fn value_target(target: &MetricTarget) -> Option<i64> {
    milli(target.value.as_ref())
}

fn average_target(target: &MetricTarget) -> Option<i64> {
    milli(target.average_value.as_ref())
}

fn format_milli(milli: i64) -> String {
    milli_quantity(milli).0
}

/// The inputs every metric of one reconcile shares.
struct Inputs<'a> {
    namespace: &'a str,
    target: &'a Target,
    pods: &'a [Pod],
    settings: Settings,
    now: Timestamp,
    metrics: &'a dyn MetricsClient,
    /// The newest per-pod sample seen.
    newest: Mutex<Option<Timestamp>>,
}

impl Inputs<'_> {
    fn saw(&self, metrics: &BTreeMap<String, replicas::PodMetric>) {
        let newest = metrics.values().map(|m| m.timestamp).max();
        let mut seen = self.newest.lock().unwrap_or_else(|e| e.into_inner());
        *seen = (*seen).max(newest);
    }

    /// Resource and ContainerResource metrics.
    async fn resource(
        &self,
        resource: &str,
        container: Option<&str>,
        target: &MetricTarget,
    ) -> Result<(Proposal, MetricValueStatus, String, String), String> {
        let current = self.target.spec_replicas;
        let average = average_target(target);
        if average.is_none() && target.average_utilization.is_none() {
            return Err(
                "invalid resource metric source: neither an average utilization target nor an average value (usage) target was set"
                    .into(),
            );
        }
        let fetched = self
            .metrics
            .resource(self.namespace, &self.target.selector, resource, container)
            .await;
        if let Ok(metrics) = &fetched {
            self.saw(metrics);
        }
        if let Some(average) = average {
            let metrics = fetched.map_err(|e| {
                format!("failed to get {resource} usage: unable to get metrics for resource {resource}: {e}")
            })?;
            // Requests play no part in a value target.
            let pods = pod_infos(self.pods, resource, None)?;
            let proposal = replicas::average_value_replicas(
                current,
                average,
                resource,
                &pods,
                &metrics,
                self.now,
                &self.settings,
            )
            .map_err(|e| format!("failed to get {resource} usage: {e}"))?;
            let status = MetricValueStatus {
                average_value: Some(resource_quantity(resource, proposal.average_milli)),
                ..Default::default()
            };
            let value = format!(
                "{}/{}",
                resource_quantity(resource, proposal.average_milli).0,
                resource_quantity(resource, average).0
            );
            return Ok((proposal, status, format!("{resource} resource"), value));
        }
        let utilization = target.average_utilization.unwrap_or(80);
        let metrics = match fetched {
            Ok(metrics) => metrics,
            Err(e) if e.starts_with("no metrics returned") => BTreeMap::new(),
            Err(e) => {
                return Err(format!(
                    "failed to get {resource} utilization: unable to get metrics for resource {resource}: {e}"
                ));
            }
        };
        // As upstream: the metrics first, then the pods and their requests.
        let pods = if metrics.is_empty() {
            Vec::new()
        } else {
            pod_infos(self.pods, resource, container)?
        };
        let proposal = replicas::utilization_replicas(
            current,
            utilization,
            resource,
            &pods,
            &metrics,
            self.now,
            &self.settings,
        )
        .map_err(|e| format!("failed to get {resource} utilization: {e}"))?;
        let status = MetricValueStatus {
            average_utilization: proposal.utilization,
            average_value: Some(resource_quantity(resource, proposal.average_milli)),
            ..Default::default()
        };
        let description = match container {
            Some(_) => format!("{resource} container resource utilization (percentage of request)"),
            None => format!("{resource} resource utilization (percentage of request)"),
        };
        let value = format!("{}%/{utilization}%", proposal.utilization.unwrap_or(0));
        Ok((proposal, status, description, value))
    }

    /// `computeReplicasForMetric`.
    async fn metric(&self, spec: &MetricSpec) -> Result<MetricOutcome, MetricFailure> {
        let fail = |reason: &'static str, prefix: String, error: String, description: String| {
            let (condition, event) = unable(reason, &error);
            MetricFailure {
                error: format!("{prefix}{error}"),
                condition,
                event,
                description,
            }
        };
        match spec.type_.as_str() {
            "Resource" | "ContainerResource" => {
                let (name, container, target, reason) = match (&spec.resource, &spec.container_resource) {
                    (Some(r), _) if spec.type_ == "Resource" => {
                        (r.name.clone(), None, r.target.clone(), "FailedGetResourceMetric")
                    }
                    (_, Some(c)) if spec.type_ == "ContainerResource" => (
                        c.name.clone(),
                        Some(c.container.clone()),
                        c.target.clone(),
                        "FailedGetContainerResourceMetric",
                    ),
                    _ => {
                        let error = format!("invalid {} metric source: no source was set", spec.type_);
                        return Err(fail(
                            "InvalidMetricSourceType",
                            String::new(),
                            error,
                            spec.type_.clone(),
                        ));
                    }
                };
                let prefix = match &container {
                    Some(c) => format!("failed to get {c} container metric value: "),
                    None => format!("failed to get {name} resource metric value: "),
                };
                let (proposal, current, description, value) = self
                    .resource(&name, container.as_deref(), &target)
                    .await
                    .map_err(|e| fail(reason, prefix, e, name.clone()))?;
                let status = match container {
                    Some(container) => MetricStatus {
                        type_: "ContainerResource".into(),
                        container_resource: Some(ContainerResourceMetricStatus {
                            container,
                            name,
                            current,
                        }),
                        ..Default::default()
                    },
                    None => MetricStatus {
                        type_: "Resource".into(),
                        resource: Some(ResourceMetricStatus { name, current }),
                        ..Default::default()
                    },
                };
                Ok(MetricOutcome::new(
                    proposal.replicas,
                    description,
                    value,
                    Some(proposal.pods),
                    status,
                ))
            }
            "Pods" => {
                let Some(source) = &spec.pods else {
                    let error = "invalid Pods metric source: no source was set".to_string();
                    return Err(fail(
                        "InvalidMetricSourceType",
                        String::new(),
                        error,
                        "pods".into(),
                    ));
                };
                let name = source.metric.name.clone();
                let description = format!("pods metric {name}");
                let fail = |e: String| {
                    fail(
                        "FailedGetPodsMetric",
                        "failed to get pods metric value: ".into(),
                        e,
                        description.clone(),
                    )
                };
                let target = average_target(&source.target).ok_or_else(|| {
                    fail("invalid pods metric source: no average value target was set".into())
                })?;
                let selector = source
                    .metric
                    .selector
                    .as_ref()
                    .map(super::selector_query)
                    .unwrap_or_default();
                let pods = pod_infos(self.pods, "", None).map_err(&fail)?;
                let metrics = self
                    .metrics
                    .pods(self.namespace, &self.target.selector, &name, &selector)
                    .await
                    .map_err(|e| fail(format!("unable to get metric {name}: {e}")))?;
                self.saw(&metrics);
                let proposal = replicas::average_value_replicas(
                    self.target.spec_replicas,
                    target,
                    "",
                    &pods,
                    &metrics,
                    self.now,
                    &self.settings,
                )
                .map_err(&fail)?;
                let value = format!(
                    "{}/{}",
                    format_milli(proposal.average_milli),
                    format_milli(target)
                );
                let status = MetricStatus {
                    type_: "Pods".into(),
                    pods: Some(PodsMetricStatus {
                        metric: source.metric.clone(),
                        current: MetricValueStatus {
                            average_value: Some(milli_quantity(proposal.average_milli)),
                            ..Default::default()
                        },
                    }),
                    ..Default::default()
                };
                Ok(MetricOutcome::new(
                    proposal.replicas,
                    description,
                    value,
                    Some(proposal.pods),
                    status,
                ))
            }
            "Object" | "External" => self
                .single_value(spec)
                .await
                .map_err(|(reason, prefix, error, description)| fail(reason, prefix, error, description)),
            other => {
                let error = format!("unknown metric source type {other:?}");
                Err(fail(
                    "InvalidMetricSourceType",
                    String::new(),
                    error,
                    other.to_string(),
                ))
            }
        }
    }

    /// Object and External metrics: one value (the sum of an external metric's series) against a
    /// value or a per-pod average.
    async fn single_value(
        &self,
        spec: &MetricSpec,
    ) -> Result<MetricOutcome, (&'static str, String, String, String)> {
        let (metric, target, object, reason, prefix): (
            MetricIdentifier,
            MetricTarget,
            Option<CrossVersionObjectReference>,
            _,
            _,
        ) = match (&spec.object, &spec.external) {
            (Some(o), _) if spec.type_ == "Object" => (
                o.metric.clone(),
                o.target.clone(),
                Some(o.described_object.clone()),
                "FailedGetObjectMetric",
                "failed to get object metric value: ".to_string(),
            ),
            (_, Some(e)) if spec.type_ == "External" => (
                e.metric.clone(),
                e.target.clone(),
                None,
                "FailedGetExternalMetric",
                format!("failed to get {} external metric value: ", e.metric.name),
            ),
            _ => {
                let error = format!("invalid {} metric source: no source was set", spec.type_);
                return Err((
                    "InvalidMetricSourceType",
                    String::new(),
                    error,
                    spec.type_.clone(),
                ));
            }
        };
        let name = metric.name.clone();
        let kind = if object.is_some() { "object" } else { "external" };
        // Object targets go by their type; External ones by which field is set, the average first
        // (`computeStatusForObjectMetric`, `computeStatusForExternalMetric`).
        let chosen = match (&object, target.type_.as_str()) {
            (Some(_), "Value") => value_target(&target).map(|v| (false, v)),
            (Some(_), "AverageValue") => average_target(&target).map(|v| (true, v)),
            (Some(_), _) => None,
            (None, _) => average_target(&target)
                .map(|v| (true, v))
                .or_else(|| value_target(&target).map(|v| (false, v))),
        };
        let Some(per_pod) = chosen else {
            let error = format!(
                "invalid {kind} metric source: neither a value target nor an average value target was set"
            );
            return Err((reason, prefix, error, name));
        };
        // The wrapping upstream adds to the error it returns (the condition and event keep it bare).
        let prefix = match (kind, per_pod.0) {
            ("object", true) => format!("{prefix}failed to get {name} object metric: "),
            ("external", true) => format!("{prefix}failed to get {name} external metric: "),
            ("external", false) => format!("{prefix}failed to get external metric {name}: "),
            _ => prefix,
        };
        let description = match &object {
            Some(o) if !per_pod.0 => format!("{} metric {name}", o.kind),
            _ => format!(
                "external metric {name}({})",
                go_selector(metric.selector.as_ref())
            ),
        };
        let selector = metric
            .selector
            .as_ref()
            .map(super::selector_query)
            .unwrap_or_default();
        let usage = match &object {
            Some(o) => self.metrics.object(self.namespace, o, &name, &selector).await,
            None => self
                .metrics
                .external(self.namespace, &name, &selector)
                .await
                .map(|values| values.into_iter().fold(0i64, i64::saturating_add)),
        };
        let usage = usage.map_err(|e| {
            let error = match &object {
                Some(o) => format!(
                    "unable to get metric {name} of {} {}/{}: {e}",
                    o.kind, self.namespace, o.name
                ),
                None => format!(
                    "unable to get external metric {}/{name}/{}: {e}",
                    self.namespace,
                    go_selector(metric.selector.as_ref())
                ),
            };
            (reason, prefix.clone(), error, description.clone())
        })?;
        let (replicas, current, value) = if per_pod.0 {
            let (replicas, average) = replicas::per_pod_replicas(
                self.target.status_replicas,
                usage,
                per_pod.1,
                &self.settings.tolerances,
            );
            let current = MetricValueStatus {
                average_value: Some(milli_quantity(average)),
                ..Default::default()
            };
            (
                replicas,
                current,
                format!("{}/{} (avg)", format_milli(average), format_milli(per_pod.1)),
            )
        } else {
            let pods = pod_infos(self.pods, "", None)
                .map_err(|e| (reason, prefix.clone(), e, description.clone()))?;
            let replicas = replicas::value_replicas(
                self.target.spec_replicas,
                usage,
                per_pod.1,
                || replicas::ready_pods(&pods),
                &self.settings.tolerances,
            )
            .map_err(|e| (reason, prefix.clone(), e, description.clone()))?;
            let current = MetricValueStatus {
                value: Some(milli_quantity(usage)),
                ..Default::default()
            };
            (
                replicas,
                current,
                format!("{}/{}", format_milli(usage), format_milli(per_pod.1)),
            )
        };
        let status = match object {
            Some(described_object) => MetricStatus {
                type_: "Object".into(),
                object: Some(ObjectMetricStatus {
                    described_object,
                    metric,
                    current,
                }),
                ..Default::default()
            },
            None => MetricStatus {
                type_: "External".into(),
                external: Some(ExternalMetricStatus { metric, current }),
                ..Default::default()
            },
        };
        Ok(MetricOutcome::new(replicas, description, value, None, status))
    }
}

/// Every metric's proposal and the largest (`computeReplicasForMetrics`).
struct MetricsOutcome {
    /// `None` when nothing can be decided (all failed, or some failed and the rest would scale down).
    replicas: Option<i32>,
    metric: String,
    statuses: Vec<MetricStatus>,
    decisions: Vec<MetricDecision>,
    error: Option<String>,
}

async fn compute_metrics(
    inputs: &Inputs<'_>,
    specs: &[MetricSpec],
    conditions: &mut Vec<Condition>,
    events: &mut Vec<Event>,
) -> MetricsOutcome {
    let mut statuses = vec![MetricStatus::default(); specs.len()];
    let mut decisions = Vec::new();
    let (mut best, mut metric): (Option<i32>, String) = (None, String::new());
    let mut first_failure: Option<MetricFailure> = None;
    let mut invalid = 0;
    for (i, spec) in specs.iter().enumerate() {
        match inputs.metric(spec).await {
            Ok(outcome) => {
                if best.is_none_or(|b| b == 0 || outcome.replicas > b) {
                    best = Some(outcome.replicas);
                    metric = outcome.description;
                }
                statuses[i] = outcome.status;
                decisions.push(outcome.decision);
            }
            Err(failure) => {
                events.push(failure.event.clone());
                decisions.push(MetricDecision {
                    metric: failure.description.clone(),
                    replicas: None,
                    error: Some(failure.error.clone()),
                    value: String::new(),
                    pods: None,
                });
                invalid += 1;
                first_failure.get_or_insert(failure);
            }
        }
    }
    let error = first_failure.as_ref().map(|f| {
        format!(
            "invalid metrics ({invalid} invalid out of {}), first error is: {}",
            specs.len(),
            f.error
        )
    });
    let replicas = best.unwrap_or(0);
    if let Some(failure) = &first_failure
        && (invalid >= specs.len() || replicas < inputs.target.spec_replicas)
    {
        conditions.push(failure.condition.clone());
        return MetricsOutcome {
            replicas: None,
            metric,
            statuses,
            decisions,
            error,
        };
    }
    conditions.push(condition(
        "ScalingActive",
        true,
        "ValidMetricFound",
        format!("the HPA was able to successfully calculate a replica count from {metric}"),
    ));
    MetricsOutcome {
        replicas: Some(replicas),
        metric,
        statuses,
        decisions,
        error,
    }
}

/// Decides one reconcile from the target's scale and pods (`reconcileAutoscaler` up to the write).
pub async fn plan(
    config: &HpaConfig,
    metrics: &dyn MetricsClient,
    histories: &Histories,
    hpa: &HorizontalPodAutoscaler,
    target: &Target,
    pods: &Result<Vec<Pod>, Refusal>,
    now: Timestamp,
) -> Plan {
    let spec = hpa.spec.clone().unwrap_or_default();
    let key = history_key(hpa);
    let current = target.spec_replicas;
    let min = spec.min_replicas.unwrap_or(1);
    let max = spec.max_replicas;
    let mut conditions = Vec::new();
    let mut events = Vec::new();
    histories.with(&key, |h| h.record_initial(current, now));
    let stamp = now.to_string();
    let decision = |desired: i32,
                    reason: &str,
                    metrics: Vec<MetricDecision>,
                    normalization: Option<Normalized>,
                    error: Option<String>| Decision {
        first_time: stamp.clone(),
        last_time: stamp.clone(),
        count: 1,
        current_replicas: current,
        desired_replicas: desired,
        rescaled: false,
        reason: reason.to_string(),
        metrics,
        normalization,
        error,
    };
    if current == 0 && min != 0 {
        conditions.push(condition(
            "ScalingActive",
            false,
            "ScalingDisabled",
            "scaling is disabled since the replica count of the target is zero",
        ));
        return Plan {
            desired: 0,
            rescale: false,
            reason: String::new(),
            statuses: Vec::new(),
            conditions,
            events,
            decision: None,
            failed: None,
            partial: None,
            metric_time: None,
        };
    }
    let bounds = if current > max {
        Some((max, "Current number of replicas above Spec.MaxReplicas"))
    } else if current < min {
        Some((min, "Current number of replicas below Spec.MinReplicas"))
    } else {
        None
    };
    if let Some((desired, reason)) = bounds {
        return Plan {
            desired,
            rescale: true,
            reason: reason.to_string(),
            statuses: Vec::new(),
            conditions,
            events,
            decision: Some(decision(desired, reason, Vec::new(), None, None)),
            failed: None,
            partial: None,
            metric_time: None,
        };
    }
    // The selector is needed from here on (`validateAndParseSelector` in `computeReplicasForMetrics`).
    let pods = match pods {
        Ok(pods) => pods,
        Err(refusal) => {
            events.push(Event {
                warning: true,
                reason: refusal.event_reason,
                message: refusal.event_message.clone(),
            });
            conditions.push(condition(
                "ScalingActive",
                false,
                refusal.reason,
                refusal.message.clone(),
            ));
            let error = refusal.event_message.clone();
            events.push(Event {
                warning: true,
                reason: "FailedComputeMetricsReplicas",
                message: error.clone(),
            });
            return Plan {
                desired: current,
                rescale: false,
                reason: String::new(),
                statuses: Vec::new(),
                conditions,
                events,
                decision: Some(decision(current, "", Vec::new(), None, Some(error.clone()))),
                failed: Some(error),
                partial: None,
                metric_time: None,
            };
        }
    };
    let namespace = hpa.namespace().unwrap_or_default();
    let inputs = Inputs {
        namespace: &namespace,
        target,
        pods,
        settings: settings(config, hpa),
        now,
        metrics,
        newest: Mutex::new(None),
    };
    let specs = spec.metrics.clone().unwrap_or_default();
    let outcome = compute_metrics(&inputs, &specs, &mut conditions, &mut events).await;
    let Some(recommended) = outcome.replicas else {
        let error = outcome.error.unwrap_or_default();
        events.push(Event {
            warning: true,
            reason: "FailedComputeMetricsReplicas",
            message: error.clone(),
        });
        return Plan {
            desired: current,
            rescale: false,
            reason: String::new(),
            statuses: outcome.statuses,
            conditions,
            events,
            decision: Some(decision(
                current,
                "",
                outcome.decisions,
                None,
                Some(error.clone()),
            )),
            failed: Some(error),
            partial: None,
            metric_time: None,
        };
    };
    let reason = if recommended > current {
        format!("{} above target", outcome.metric)
    } else if recommended < current {
        "All metrics below target".to_string()
    } else {
        String::new()
    };
    let normalized = match &spec.behavior {
        None => histories.with(&key, |h| {
            h.normalize_legacy(
                current,
                recommended,
                min,
                max,
                config.downscale_stabilization,
                now,
            )
        }),
        Some(b) => {
            let behavior = Behavior::from_spec(b, config.downscale_stabilization);
            histories.with(&key, |h| {
                h.normalize(&behavior, current, recommended, min, max, now)
            })
        }
    };
    conditions.push(condition(
        "AbleToScale",
        true,
        normalized.stabilization.reason,
        normalized.stabilization.message,
    ));
    conditions.push(condition(
        "ScalingLimited",
        normalized.limited,
        normalized.limit.reason,
        normalized.limit.message,
    ));
    let desired = normalized.replicas;
    // Kept when the metrics asked for a change, whether or not it is made.
    let explained = (recommended != current || desired != current).then(|| {
        decision(
            desired,
            &reason,
            outcome.decisions,
            Some(normalized),
            outcome.error.clone(),
        )
    });
    Plan {
        desired,
        rescale: desired != current,
        reason,
        statuses: outcome.statuses,
        conditions,
        events,
        decision: explained,
        failed: None,
        partial: outcome.error.clone(),
        metric_time: *inputs.newest.lock().unwrap_or_else(|e| e.into_inner()),
    }
}

/// Why the HPA cannot use its target's selector: the event, and the ScalingActive condition.
#[derive(Debug)]
pub struct Refusal {
    pub event_reason: &'static str,
    pub event_message: String,
    pub reason: &'static str,
    pub message: String,
}

/// The pods of the target's scale selector (`validateAndParseSelector`): the selector must be there,
/// parse, and select no pod another HPA's selector selects too.
async fn target_pods(
    context: &Context,
    hpa: &HorizontalPodAutoscaler,
    selector: &str,
) -> Result<Vec<Pod>, Refusal> {
    let invalid = |message: String| Refusal {
        event_reason: "InvalidSelector",
        event_message: message.clone(),
        reason: "InvalidSelector",
        message,
    };
    if selector.is_empty() {
        return Err(Refusal {
            event_reason: "SelectorRequired",
            event_message: "selector is required".into(),
            reason: "InvalidSelector",
            message: "the HPA target's scale is missing a selector".into(),
        });
    }
    let parsed = ParsedSelector::parse(selector).map_err(|e| {
        invalid(format!(
            "couldn't convert selector into a corresponding internal selector object: {e}"
        ))
    })?;
    let namespace = hpa.namespace().unwrap_or_default();
    context
        .selectors
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .insert(key(hpa), parsed);
    let api: Api<Pod> = Api::namespaced(context.client.clone(), &namespace);
    let pods = api
        .list(&ListParams::default().labels(selector))
        .await
        .map_err(|e| invalid(api_message(e)))?
        .items;
    let no_labels = BTreeMap::new();
    let mut controlling: Vec<String> = {
        let selectors = context.selectors.lock().unwrap_or_else(|e| e.into_inner());
        selectors
            .iter()
            .filter(|(other, _)| other.starts_with(&format!("{namespace}/")))
            .filter(|(_, other)| {
                pods.iter()
                    .any(|p| other.matches(p.metadata.labels.as_ref().unwrap_or(&no_labels)))
            })
            .map(|(k, _)| k.clone())
            .collect()
    };
    if controlling.len() > 1 {
        controlling.sort();
        let message = format!(
            "pods by selector {selector} are controlled by multiple HPAs: [{}]",
            controlling.join(" ")
        );
        return Err(Refusal {
            event_reason: "AmbiguousSelector",
            event_message: message.clone(),
            reason: "AmbiguousSelector",
            message,
        });
    }
    Ok(pods)
}

/// The scale subresource's path of a target.
fn scale_path(namespace: &str, target: &CrossVersionObjectReference) -> Result<String, String> {
    let api_version = target.api_version.clone().unwrap_or_default();
    let (group, version) = match api_version.rsplit_once('/') {
        Some((g, v)) => (g.to_string(), v.to_string()),
        None => (String::new(), api_version.clone()),
    };
    let rt = resource_of(&group, Some(&version), &target.kind, true).ok_or_else(|| {
        format!(
            "no matches for kind {:?} in group {group:?} with a scale subresource",
            target.kind
        )
    })?;
    let base = if group.is_empty() {
        format!("/api/{}", rt.version)
    } else {
        format!("/apis/{group}/{}", rt.version)
    };
    Ok(format!(
        "{base}/namespaces/{namespace}/{}/{}/scale",
        rt.plural, target.name
    ))
}

async fn get_scale(client: &kube::Client, path: &str) -> Result<Scale, String> {
    let request = http::Request::get(path)
        .body(Vec::new())
        .map_err(|e| e.to_string())?;
    client.request::<Scale>(request).await.map_err(api_message)
}

/// Writes `replicas` to the scale, re-reading it on a conflict.
async fn update_scale(
    client: &kube::Client,
    path: &str,
    mut scale: Scale,
    replicas: i32,
) -> Result<(), String> {
    for _ in 0..3 {
        scale.spec.get_or_insert_with(Default::default).replicas = Some(replicas);
        let body = serde_json::to_vec(&scale).map_err(|e| e.to_string())?;
        let request = http::Request::put(path)
            .header(http::header::CONTENT_TYPE, "application/json")
            .body(body)
            .map_err(|e| e.to_string())?;
        match client.request::<Scale>(request).await {
            Ok(_) => return Ok(()),
            Err(e) if super::api_code(&e) == Some(409) => scale = get_scale(client, path).await?,
            Err(e) => return Err(api_message(e)),
        }
    }
    Err("the scale kept changing under the update".into())
}

async fn reconcile(
    context: &Context,
    hpa: &HorizontalPodAutoscaler,
    metrics: &ControllerMetrics,
) -> Result<(), String> {
    let namespace = hpa.namespace().unwrap_or_default();
    let now = Timestamp::now();
    let outcome = |outcome: &'static str, metric_age: Option<Duration>| {
        HpaReconciled { outcome, metric_age }.emit(metrics);
    };
    let reference = hpa.object_ref(&());
    let record = |event: &Event| {
        if event.warning {
            context
                .recorder
                .warning(&reference, event.reason, event.message.clone());
        } else {
            context
                .recorder
                .normal(&reference, event.reason, event.message.clone());
        }
    };
    let spec = hpa.spec.clone().unwrap_or_default();
    let original = hpa.status.clone().unwrap_or_default();
    let mut status = original.clone();
    let mut conditions = status.conditions.take().unwrap_or_default();

    let scale = match scale_path(&namespace, &spec.scale_target_ref) {
        Ok(path) => get_scale(&context.client, &path).await.map(|s| (path, s)),
        Err(e) => Err(e),
    };
    let (path, scale) = match scale {
        Ok(found) => found,
        Err(e) => {
            record(&Event {
                warning: true,
                reason: "FailedGetScale",
                message: e.clone(),
            });
            let c = condition(
                "AbleToScale",
                false,
                "FailedGetScale",
                format!("the HPA controller was unable to get the target's current scale: {e}"),
            );
            set_condition(&mut conditions, &c, now);
            status.conditions = Some(conditions);
            outcome("failed_scale", None);
            write_status(context, hpa, &original, status).await?;
            return Err(format!("failed to query scale subresource: {e}"));
        }
    };
    set_condition(
        &mut conditions,
        &condition(
            "AbleToScale",
            true,
            "SucceededGetScale",
            "the HPA controller was able to get the target's current scale",
        ),
        now,
    );
    let target = Target {
        spec_replicas: scale.spec.as_ref().and_then(|s| s.replicas).unwrap_or(0),
        status_replicas: scale.status.as_ref().map_or(0, |s| s.replicas),
        selector: scale
            .status
            .as_ref()
            .and_then(|s| s.selector.clone())
            .unwrap_or_default(),
    };
    let pods = target_pods(context, hpa, &target.selector).await;
    let mut plan = plan(
        &context.config,
        context.metrics.as_ref(),
        &context.histories,
        hpa,
        &target,
        &pods,
        now,
    )
    .await;
    for c in &plan.conditions {
        set_condition(&mut conditions, c, now);
    }
    for e in &plan.events {
        record(e);
    }
    let current = target.spec_replicas;
    // Metrics that failed while others decided still fail the reconcile (upstream's `retErr`).
    let mut result = match (&plan.failed, &plan.partial) {
        (Some(error), _) => Err(format!(
            "failed to compute desired number of replicas based on listed metrics: {error}"
        )),
        (None, Some(error)) => Err(error.clone()),
        (None, None) => Ok(()),
    };
    if plan.rescale {
        match update_scale(&context.client, &path, scale, plan.desired).await {
            Ok(()) => {
                set_condition(
                    &mut conditions,
                    &condition(
                        "AbleToScale",
                        true,
                        "SucceededRescale",
                        format!(
                            "the HPA controller was able to update the target scale to {}",
                            plan.desired
                        ),
                    ),
                    now,
                );
                let mut message = format!("New size: {}; reason: {}", plan.desired, plan.reason);
                if let Some(d) = plan.decision.as_mut() {
                    d.rescaled = true;
                    let summary = d.summary();
                    if !summary.is_empty() {
                        message.push_str(&format!("; decision: {summary}"));
                    }
                }
                record(&Event {
                    warning: false,
                    reason: "SuccessfulRescale",
                    message,
                });
                let behavior = spec
                    .behavior
                    .as_ref()
                    .map(|b| Behavior::from_spec(b, context.config.downscale_stabilization));
                context.histories.with(&history_key(hpa), |h| {
                    h.store_scale_event(behavior.as_ref(), current, plan.desired, now)
                });
                status.last_scale_time = Some(Time(now));
                status.desired_replicas = plan.desired;
                let age = plan
                    .metric_time
                    .and_then(|t| Duration::try_from(Timestamp::now().duration_since(t)).ok());
                outcome("rescaled", age);
            }
            Err(e) => {
                record(&Event {
                    warning: true,
                    reason: "FailedRescale",
                    message: format!("New size: {}; reason: {}; error: {e}", plan.desired, plan.reason),
                });
                set_condition(
                    &mut conditions,
                    &condition(
                        "AbleToScale",
                        false,
                        "FailedUpdateScale",
                        format!("the HPA controller was unable to update the target scale: {e}"),
                    ),
                    now,
                );
                if let Some(d) = plan.decision.as_mut() {
                    d.error = Some(e.clone());
                }
                result = Err(format!("failed to rescale: {e}"));
                outcome("failed_scale", None);
            }
        }
    } else if plan.failed.is_some() {
        outcome("failed_metrics", None);
    } else {
        status.desired_replicas = current;
        outcome(
            if plan.decision.is_some() {
                "held"
            } else {
                "unchanged"
            },
            None,
        );
    }
    if let (Some(uid), Some(decision)) = (hpa.metadata.uid.as_deref(), plan.decision.take()) {
        context.decisions.record(uid, decision);
    }
    status.current_replicas = Some(current);
    status.current_metrics = (!plan.statuses.is_empty()).then_some(plan.statuses);
    status.conditions = Some(conditions);
    write_status(context, hpa, &original, status).await?;
    result
}

/// `updateStatusIfNeeded`: a merge patch of the whole status, only when it changed.
async fn write_status(
    context: &Context,
    hpa: &HorizontalPodAutoscaler,
    original: &HorizontalPodAutoscalerStatus,
    status: HorizontalPodAutoscalerStatus,
) -> Result<(), String> {
    if &status == original {
        return Ok(());
    }
    let api: Api<HorizontalPodAutoscaler> =
        Api::namespaced(context.client.clone(), &hpa.namespace().unwrap_or_default());
    let name = hpa.name_any();
    let mut status = status;
    let mut revision = hpa.metadata.resource_version.clone();
    let mut last_error = String::new();
    // Pinned to the revision the status was computed from: a cache behind the last write gets a 409,
    // and the write is made again over the stored object, keeping its newer rescale time.
    for _ in 0..2 {
        let mut value = serde_json::to_value(&status).map_err(|e| e.to_string())?;
        for field in ["lastScaleTime", "currentMetrics", "conditions", "currentReplicas"] {
            if let Some(object) = value.as_object_mut() {
                object.entry(field).or_insert(serde_json::Value::Null);
            }
        }
        let patch = Patch::Merge(serde_json::json!({
            "metadata": {"resourceVersion": revision},
            "status": value,
        }));
        match api.patch_status(&name, &PatchParams::default(), &patch).await {
            Ok(_) => return Ok(()),
            Err(e) if super::api_code(&e) == Some(409) => {
                last_error = api_message(e);
                let stored = api.get(&name).await.map_err(api_message)?;
                let stored_scale_time = stored.status.as_ref().and_then(|s| s.last_scale_time.clone());
                if stored_scale_time.as_ref().map(|t| t.0) > status.last_scale_time.as_ref().map(|t| t.0) {
                    status.last_scale_time = stored_scale_time;
                }
                revision = stored.metadata.resource_version;
            }
            Err(e) => {
                last_error = api_message(e);
                break;
            }
        }
    }
    context
        .recorder
        .warning(&hpa.object_ref(&()), "FailedUpdateStatus", last_error.clone());
    Err(format!("failed to update status: {last_error}"))
}
