//! Object state as metrics in kube-state-metrics' names and labels (`/metrics/state`), so dashboards and
//! alerts written for kube-state-metrics work: pods, containers, Deployments, ReplicaSets,
//! HorizontalPodAutoscalers, nodes, Services and Endpoints. Built from watch caches of the API (one
//! watch per type, kept by reflectors), never from list calls per scrape.

use std::collections::BTreeMap;
use std::fmt::Write;

use k8s_openapi::api::apps::v1::{Deployment, ReplicaSet};
use k8s_openapi::api::autoscaling::v2::HorizontalPodAutoscaler;
use k8s_openapi::api::core::v1::{Endpoints, Node, Pod, Service};
use k8s_openapi::apimachinery::pkg::api::resource::Quantity;
use kube::ResourceExt;
use kube::runtime::reflector::Store;
use tokio_util::sync::CancellationToken;

use crate::controllers::cache;
use crate::exposition::push_label;

/// The caches the metrics are built from.
#[derive(Clone)]
pub struct StateMetrics {
    pods: Store<Pod>,
    deployments: Store<Deployment>,
    replicasets: Store<ReplicaSet>,
    hpas: Store<HorizontalPodAutoscaler>,
    nodes: Store<Node>,
    services: Store<Service>,
    endpoints: Store<Endpoints>,
}

const POD_PHASES: [&str; 5] = ["Pending", "Succeeded", "Failed", "Unknown", "Running"];
const CONDITION_STATUSES: [&str; 3] = ["true", "false", "unknown"];

/// An exposition being written, in OpenMetrics or the Prometheus text format.
struct Out {
    text: String,
    openmetrics: bool,
}

impl Out {
    /// Starts a family; counters' samples are then written under `name_total`.
    fn family(&mut self, name: &str, kind: &str, help: &str) {
        let shown = if kind == "counter" && !self.openmetrics {
            format!("{name}_total")
        } else {
            name.to_string()
        };
        let _ = writeln!(self.text, "# HELP {shown} {help}");
        let _ = writeln!(self.text, "# TYPE {shown} {kind}");
    }

    fn sample(&mut self, name: &str, labels: &[(&str, &str)], value: f64) {
        self.text.push_str(name);
        if !labels.is_empty() {
            self.text.push('{');
            for (k, v) in labels {
                push_label(&mut self.text, k, v);
            }
            self.text.push('}');
        }
        // Integral values (nearly all, most of them 0 or 1) without float formatting.
        if value == 0.0 {
            self.text.push_str(" 0\n");
        } else if value == 1.0 {
            self.text.push_str(" 1\n");
        } else if value.fract() == 0.0 && value.abs() < 1e15 {
            let _ = writeln!(self.text, " {}", value as i64);
        } else {
            let _ = writeln!(self.text, " {value}");
        }
    }
}

/// A pod's namespace, name and uid, the labels every pod series carries.
fn pod_id(p: &Pod) -> (&str, &str, &str) {
    let (ns, name) = namespaced_name(p);
    (ns, name, p.metadata.uid.as_deref().unwrap_or(""))
}

/// An object's namespace and name, borrowed.
fn namespaced_name<T: kube::Resource>(object: &T) -> (&str, &str) {
    let meta = object.meta();
    (
        meta.namespace.as_deref().unwrap_or(""),
        meta.name.as_deref().unwrap_or(""),
    )
}

/// Objects in namespace and name order, compared without copying their names.
fn sorted<T: kube::Resource>(mut objects: Vec<std::sync::Arc<T>>) -> Vec<std::sync::Arc<T>> {
    objects.sort_unstable_by(|a, b| namespaced_name(a.as_ref()).cmp(&namespaced_name(b.as_ref())));
    objects
}

/// A gauge of a namespaced object: its name, help, and value (none: no sample).
type Gauge<T> = (&'static str, &'static str, fn(&T) -> Option<i64>);

impl Out {
    /// Each family of `families` with a sample per object, labelled `namespace` and `label` (its name).
    fn object_gauges<T: ResourceExt>(
        &mut self,
        objects: &[std::sync::Arc<T>],
        label: &str,
        families: &[Gauge<T>],
    ) {
        for (family, help, value) in families {
            self.family(family, "gauge", help);
            for object in objects {
                if let Some(v) = value(object) {
                    let (ns, name) = namespaced_name(object.as_ref());
                    self.sample(family, &[("namespace", ns), (label, name)], v as f64);
                }
            }
        }
    }
}

/// A metric target's or status's value, average value and utilization, under kube-state-metrics'
/// `metric_target_type` names.
fn metric_values(
    value: Option<&Quantity>,
    average: Option<&Quantity>,
    utilization: Option<i32>,
) -> [(&'static str, Option<f64>); 3] {
    let plain = |q: Option<&Quantity>| q.and_then(|q| resource_value("", q)).map(|v| v.0);
    [
        ("value", plain(value)),
        ("average", plain(average)),
        ("utilization", utilization.map(f64::from)),
    ]
}

fn bool_label(value: bool) -> &'static str {
    if value { "true" } else { "false" }
}

/// A resource quantity in its base unit, with kube-state-metrics' `unit` label.
fn resource_value(name: &str, quantity: &Quantity) -> Option<(f64, &'static str)> {
    let milli = crate::scheduler::fit::milli_value(&quantity.0)? as f64 / 1000.0;
    let unit = match name {
        "cpu" => "core",
        "memory" | "ephemeral-storage" => "byte",
        _ if name.starts_with("hugepages-") => "byte",
        _ => "integer",
    };
    Some((milli, unit))
}

impl StateMetrics {
    /// Starts the watches; they stop with `shutdown`.
    pub fn start(client: &kube::Client, shutdown: &CancellationToken) -> StateMetrics {
        let config = kube::runtime::watcher::Config::default;
        StateMetrics {
            pods: cache(client, config(), shutdown, "state metrics", |_| {}),
            deployments: cache(client, config(), shutdown, "state metrics", |_| {}),
            replicasets: cache(client, config(), shutdown, "state metrics", |_| {}),
            hpas: cache(client, config(), shutdown, "state metrics", |_| {}),
            nodes: cache(client, config(), shutdown, "state metrics", |_| {}),
            services: cache(client, config(), shutdown, "state metrics", |_| {}),
            endpoints: cache(client, config(), shutdown, "state metrics", |_| {}),
        }
    }

    /// Metrics of fixed pods and nodes (no watches): for benchmarks and tests.
    pub fn of(pods: Vec<Pod>, nodes: Vec<Node>) -> StateMetrics {
        fn filled<K>(objects: Vec<K>) -> Store<K>
        where
            K: kube::Resource<DynamicType = ()> + Clone + 'static,
        {
            let (reader, mut writer) = kube::runtime::reflector::store::<K>();
            for object in objects {
                writer.apply_watcher_event(&kube::runtime::watcher::Event::Apply(object));
            }
            reader
        }
        StateMetrics {
            pods: filled(pods),
            deployments: filled(Vec::new()),
            replicasets: filled(Vec::new()),
            hpas: filled(Vec::new()),
            nodes: filled(nodes),
            services: filled(Vec::new()),
            endpoints: filled(Vec::new()),
        }
    }

    /// The exposition, in OpenMetrics (`openmetrics`) or the Prometheus text format.
    pub fn encode(&self, openmetrics: bool) -> String {
        let mut out = Out {
            text: String::new(),
            openmetrics,
        };
        self.pods(&mut out);
        self.workloads(&mut out);
        self.hpas(&mut out);
        self.nodes(&mut out);
        self.services(&mut out);
        if openmetrics {
            out.text.push_str("# EOF\n");
        }
        out.text
    }

    fn pods(&self, out: &mut Out) {
        let pods = sorted(self.pods.state());
        out.family("kube_pod_info", "gauge", "Information about pod.");
        for p in &pods {
            let (ns, name, uid) = pod_id(p);
            let status = p.status.as_ref();
            let spec = p.spec.as_ref();
            let owner = p.owner_references().iter().find(|o| o.controller == Some(true));
            out.sample(
                "kube_pod_info",
                &[
                    ("namespace", ns),
                    ("pod", name),
                    ("uid", uid),
                    ("host_ip", status.and_then(|s| s.host_ip.as_deref()).unwrap_or("")),
                    ("pod_ip", status.and_then(|s| s.pod_ip.as_deref()).unwrap_or("")),
                    ("node", spec.and_then(|s| s.node_name.as_deref()).unwrap_or("")),
                    ("created_by_kind", owner.map_or("", |o| o.kind.as_str())),
                    ("created_by_name", owner.map_or("", |o| o.name.as_str())),
                    (
                        "priority_class",
                        spec.and_then(|s| s.priority_class_name.as_deref()).unwrap_or(""),
                    ),
                    (
                        "host_network",
                        bool_label(spec.and_then(|s| s.host_network).unwrap_or(false)),
                    ),
                ],
                1.0,
            );
        }
        out.family("kube_pod_status_phase", "gauge", "The pods current phase.");
        for p in &pods {
            let (ns, name, uid) = pod_id(p);
            let phase = p
                .status
                .as_ref()
                .and_then(|s| s.phase.clone())
                .unwrap_or_default();
            for candidate in POD_PHASES {
                let value = if phase == candidate { 1.0 } else { 0.0 };
                out.sample(
                    "kube_pod_status_phase",
                    &[
                        ("namespace", ns),
                        ("pod", name),
                        ("uid", uid),
                        ("phase", candidate),
                    ],
                    value,
                );
            }
        }
        out.family(
            "kube_pod_status_ready",
            "gauge",
            "Describes whether the pod is ready to serve requests.",
        );
        for p in &pods {
            let (ns, name, uid) = pod_id(p);
            let Some(ready) = p
                .status
                .as_ref()
                .and_then(|s| s.conditions.as_ref())
                .and_then(|c| c.iter().find(|c| c.type_ == "Ready"))
            else {
                continue;
            };
            for candidate in CONDITION_STATUSES {
                let value = if ready.status.eq_ignore_ascii_case(candidate) {
                    1.0
                } else {
                    0.0
                };
                out.sample(
                    "kube_pod_status_ready",
                    &[
                        ("namespace", ns),
                        ("pod", name),
                        ("uid", uid),
                        ("condition", candidate),
                    ],
                    value,
                );
            }
        }
        fn statuses(p: &Pod) -> &[k8s_openapi::api::core::v1::ContainerStatus] {
            p.status
                .as_ref()
                .and_then(|s| s.container_statuses.as_deref())
                .unwrap_or(&[])
        }
        out.family(
            "kube_pod_container_status_restarts",
            "counter",
            "The number of container restarts per container.",
        );
        for p in &pods {
            let (ns, name, uid) = pod_id(p);
            for c in statuses(p) {
                out.sample(
                    "kube_pod_container_status_restarts_total",
                    &[
                        ("namespace", ns),
                        ("pod", name),
                        ("uid", uid),
                        ("container", &c.name),
                    ],
                    f64::from(c.restart_count),
                );
            }
        }
        type Reason = fn(&k8s_openapi::api::core::v1::ContainerState) -> Option<&str>;
        let reasons: [(&str, &str, Reason); 2] = [
            (
                "kube_pod_container_status_waiting_reason",
                "Describes the reason the container is currently in waiting state.",
                |s| s.waiting.as_ref().and_then(|w| w.reason.as_deref()),
            ),
            (
                "kube_pod_container_status_terminated_reason",
                "Describes the reason the container is currently in terminated state.",
                |s| s.terminated.as_ref().and_then(|t| t.reason.as_deref()),
            ),
        ];
        for (family, help, reason_of) in reasons {
            out.family(family, "gauge", help);
            for p in &pods {
                let (ns, name, uid) = pod_id(p);
                for c in statuses(p) {
                    if let Some(reason) = c.state.as_ref().and_then(reason_of) {
                        out.sample(
                            family,
                            &[
                                ("namespace", ns),
                                ("pod", name),
                                ("uid", uid),
                                ("container", &c.name),
                                ("reason", reason),
                            ],
                            1.0,
                        );
                    }
                }
            }
        }
        for (family, help, limits) in [
            (
                "kube_pod_container_resource_requests",
                "The number of requested request resource by a container.",
                false,
            ),
            (
                "kube_pod_container_resource_limits",
                "The number of requested limit resource by a container.",
                true,
            ),
        ] {
            out.family(family, "gauge", help);
            for p in &pods {
                let (ns, name, uid) = pod_id(p);
                let Some(spec) = p.spec.as_ref() else {
                    continue;
                };
                let node = spec.node_name.as_deref().unwrap_or("");
                for c in &spec.containers {
                    let Some(resources) = c.resources.as_ref() else {
                        continue;
                    };
                    let map = if limits {
                        resources.limits.as_ref()
                    } else {
                        resources.requests.as_ref()
                    };
                    for (resource, quantity) in map.into_iter().flatten() {
                        let Some((value, unit)) = resource_value(resource, quantity) else {
                            continue;
                        };
                        out.sample(
                            family,
                            &[
                                ("namespace", ns),
                                ("pod", name),
                                ("uid", uid),
                                ("container", &c.name),
                                ("node", node),
                                ("resource", resource),
                                ("unit", unit),
                            ],
                            value,
                        );
                    }
                }
            }
        }
    }

    fn workloads(&self, out: &mut Out) {
        let deployments = sorted(self.deployments.state());
        let deployment_families: [Gauge<Deployment>; 5] = [
            (
                "kube_deployment_spec_replicas",
                "Number of desired pods for a deployment.",
                |d| d.spec.as_ref().and_then(|s| s.replicas).map(i64::from),
            ),
            (
                "kube_deployment_status_replicas",
                "The number of replicas per deployment.",
                |d| d.status.as_ref().and_then(|s| s.replicas).map(i64::from),
            ),
            (
                "kube_deployment_status_replicas_available",
                "The number of available replicas per deployment.",
                |d| {
                    d.status
                        .as_ref()
                        .map(|s| i64::from(s.available_replicas.unwrap_or(0)))
                },
            ),
            (
                "kube_deployment_status_replicas_updated",
                "The number of updated replicas per deployment.",
                |d| {
                    d.status
                        .as_ref()
                        .map(|s| i64::from(s.updated_replicas.unwrap_or(0)))
                },
            ),
            (
                "kube_deployment_status_observed_generation",
                "The generation observed by the deployment controller.",
                |d| d.status.as_ref().and_then(|s| s.observed_generation),
            ),
        ];
        out.object_gauges(&deployments, "deployment", &deployment_families);
        let replicasets = sorted(self.replicasets.state());
        let replicaset_families: [Gauge<ReplicaSet>; 3] = [
            (
                "kube_replicaset_spec_replicas",
                "Number of desired pods for a ReplicaSet.",
                |r| r.spec.as_ref().and_then(|s| s.replicas).map(i64::from),
            ),
            (
                "kube_replicaset_status_replicas",
                "The number of replicas per ReplicaSet.",
                |r| r.status.as_ref().map(|s| i64::from(s.replicas)),
            ),
            (
                "kube_replicaset_status_ready_replicas",
                "The number of ready replicas per ReplicaSet.",
                |r| {
                    r.status
                        .as_ref()
                        .map(|s| i64::from(s.ready_replicas.unwrap_or(0)))
                },
            ),
        ];
        out.object_gauges(&replicasets, "replicaset", &replicaset_families);
        out.family(
            "kube_replicaset_owner",
            "gauge",
            "Information about the ReplicaSet's owner.",
        );
        for r in &replicasets {
            let (ns, name) = namespaced_name(r.as_ref());
            for o in r.owner_references() {
                out.sample(
                    "kube_replicaset_owner",
                    &[
                        ("namespace", ns),
                        ("replicaset", name),
                        ("owner_kind", &o.kind),
                        ("owner_name", &o.name),
                        ("owner_is_controller", bool_label(o.controller == Some(true))),
                    ],
                    1.0,
                );
            }
        }
    }

    fn hpas(&self, out: &mut Out) {
        let hpas = sorted(self.hpas.state());
        let families: [Gauge<HorizontalPodAutoscaler>; 4] = [
            (
                "kube_horizontalpodautoscaler_spec_min_replicas",
                "Lower limit for the number of pods that can be set by the autoscaler, default 1.",
                |h| {
                    Some(i64::from(
                        h.spec.as_ref().and_then(|s| s.min_replicas).unwrap_or(1),
                    ))
                },
            ),
            (
                "kube_horizontalpodautoscaler_spec_max_replicas",
                "Upper limit for the number of pods that can be set by the autoscaler; cannot be smaller than MinReplicas.",
                |h| h.spec.as_ref().map(|s| i64::from(s.max_replicas)),
            ),
            (
                "kube_horizontalpodautoscaler_status_current_replicas",
                "Current number of replicas of pods managed by this autoscaler.",
                |h| h.status.as_ref().and_then(|s| s.current_replicas).map(i64::from),
            ),
            (
                "kube_horizontalpodautoscaler_status_desired_replicas",
                "Desired number of replicas of pods managed by this autoscaler.",
                |h| h.status.as_ref().map(|s| i64::from(s.desired_replicas)),
            ),
        ];
        out.object_gauges(&hpas, "horizontalpodautoscaler", &families);
        out.family(
            "kube_horizontalpodautoscaler_spec_target_metric",
            "gauge",
            "The metric specifications used by this autoscaler when calculating the desired replica count.",
        );
        for h in &hpas {
            let (ns, name) = namespaced_name(h.as_ref());
            for metric in h
                .spec
                .as_ref()
                .and_then(|s| s.metrics.clone())
                .unwrap_or_default()
            {
                let (metric_name, target) = match metric.type_.as_str() {
                    "Resource" => metric.resource.map(|r| (r.name, r.target)),
                    "ContainerResource" => metric.container_resource.map(|r| (r.name, r.target)),
                    "Pods" => metric.pods.map(|p| (p.metric.name, p.target)),
                    "Object" => metric.object.map(|o| (o.metric.name, o.target)),
                    "External" => metric.external.map(|e| (e.metric.name, e.target)),
                    _ => None,
                }
                .unzip();
                let (Some(metric_name), Some(target)) = (metric_name, target) else {
                    continue;
                };
                let targets = metric_values(
                    target.value.as_ref(),
                    target.average_value.as_ref(),
                    target.average_utilization,
                );
                for (kind, value) in targets {
                    if let Some(value) = value {
                        out.sample(
                            "kube_horizontalpodautoscaler_spec_target_metric",
                            &[
                                ("namespace", ns),
                                ("horizontalpodautoscaler", name),
                                ("metric_name", &metric_name),
                                ("metric_target_type", kind),
                            ],
                            value,
                        );
                    }
                }
            }
        }
        Self::hpa_current_metrics(out, &hpas);
    }

    /// `kube_horizontalpodautoscaler_status_target_metric`: each metric's current value, from the status.
    fn hpa_current_metrics(out: &mut Out, hpas: &[std::sync::Arc<HorizontalPodAutoscaler>]) {
        out.family(
            "kube_horizontalpodautoscaler_status_target_metric",
            "gauge",
            "The current metric status used by this autoscaler when calculating the desired replica count.",
        );
        for h in hpas {
            let (ns, name) = namespaced_name(h.as_ref());
            for metric in h
                .status
                .as_ref()
                .and_then(|s| s.current_metrics.clone())
                .unwrap_or_default()
            {
                let current = match metric.type_.as_str() {
                    "Resource" => metric.resource.map(|r| (r.name, r.current)),
                    "ContainerResource" => metric.container_resource.map(|r| (r.name, r.current)),
                    "Pods" => metric.pods.map(|p| (p.metric.name, p.current)),
                    "Object" => metric.object.map(|o| (o.metric.name, o.current)),
                    "External" => metric.external.map(|e| (e.metric.name, e.current)),
                    _ => None,
                };
                let Some((metric_name, current)) = current else {
                    continue;
                };
                let values = metric_values(
                    current.value.as_ref(),
                    current.average_value.as_ref(),
                    current.average_utilization,
                );
                for (kind, value) in values {
                    if let Some(value) = value {
                        out.sample(
                            "kube_horizontalpodautoscaler_status_target_metric",
                            &[
                                ("namespace", ns),
                                ("horizontalpodautoscaler", name),
                                ("metric_name", &metric_name),
                                ("metric_target_type", kind),
                            ],
                            value,
                        );
                    }
                }
            }
        }
    }

    fn nodes(&self, out: &mut Out) {
        let mut nodes = self.nodes.state();
        nodes.sort_by_key(|n| n.name_any());
        out.family("kube_node_info", "gauge", "Information about a cluster node.");
        for n in &nodes {
            let name = n.name_any();
            let status = n.status.clone().unwrap_or_default();
            let info = status.node_info.clone().unwrap_or_default();
            let internal_ip = status
                .addresses
                .iter()
                .flatten()
                .find(|a| a.type_ == "InternalIP")
                .map(|a| a.address.clone())
                .unwrap_or_default();
            let spec = n.spec.clone().unwrap_or_default();
            out.sample(
                "kube_node_info",
                &[
                    ("node", &name),
                    ("kernel_version", &info.kernel_version),
                    ("os_image", &info.os_image),
                    ("container_runtime_version", &info.container_runtime_version),
                    ("kubelet_version", &info.kubelet_version),
                    ("kubeproxy_version", &info.kube_proxy_version),
                    ("provider_id", spec.provider_id.as_deref().unwrap_or("")),
                    ("pod_cidr", spec.pod_cidr.as_deref().unwrap_or("")),
                    ("system_uuid", &info.system_uuid),
                    ("internal_ip", &internal_ip),
                ],
                1.0,
            );
        }
        out.family(
            "kube_node_status_condition",
            "gauge",
            "The condition of a cluster node.",
        );
        for n in &nodes {
            let name = n.name_any();
            for c in n
                .status
                .as_ref()
                .and_then(|s| s.conditions.clone())
                .unwrap_or_default()
            {
                for candidate in CONDITION_STATUSES {
                    let value = if c.status.eq_ignore_ascii_case(candidate) {
                        1.0
                    } else {
                        0.0
                    };
                    out.sample(
                        "kube_node_status_condition",
                        &[("node", &name), ("condition", &c.type_), ("status", candidate)],
                        value,
                    );
                }
            }
        }
        for (family, help, capacity) in [
            (
                "kube_node_status_allocatable",
                "The allocatable for different resources of a node that are available for scheduling.",
                false,
            ),
            (
                "kube_node_status_capacity",
                "The capacity for different resources of a node.",
                true,
            ),
        ] {
            out.family(family, "gauge", help);
            for n in &nodes {
                let name = n.name_any();
                let status = n.status.clone().unwrap_or_default();
                let map = if capacity {
                    status.capacity
                } else {
                    status.allocatable
                };
                for (resource, quantity) in map.unwrap_or_default() {
                    if let Some((value, unit)) = resource_value(&resource, &quantity) {
                        out.sample(
                            family,
                            &[("node", &name), ("resource", &resource), ("unit", unit)],
                            value,
                        );
                    }
                }
            }
        }
    }

    fn services(&self, out: &mut Out) {
        let services = sorted(self.services.state());
        out.family("kube_service_info", "gauge", "Information about service.");
        for s in &services {
            let (ns, name) = namespaced_name(s.as_ref());
            let uid = s.metadata.uid.as_deref().unwrap_or("");
            let spec = s.spec.clone().unwrap_or_default();
            out.sample(
                "kube_service_info",
                &[
                    ("namespace", ns),
                    ("service", name),
                    ("uid", uid),
                    ("cluster_ip", spec.cluster_ip.as_deref().unwrap_or("")),
                    ("external_name", spec.external_name.as_deref().unwrap_or("")),
                    ("load_balancer_ip", spec.load_balancer_ip.as_deref().unwrap_or("")),
                ],
                1.0,
            );
        }
        let endpoints = sorted(self.endpoints.state());
        out.family(
            "kube_endpoint_address",
            "gauge",
            "Information about Endpoint available and non available addresses.",
        );
        for e in &endpoints {
            let (ns, name) = namespaced_name(e.as_ref());
            let mut addresses: BTreeMap<String, bool> = BTreeMap::new();
            for subset in e.subsets.iter().flatten() {
                for a in subset.addresses.iter().flatten() {
                    addresses.insert(a.ip.clone(), true);
                }
                for a in subset.not_ready_addresses.iter().flatten() {
                    addresses.entry(a.ip.clone()).or_insert(false);
                }
            }
            for (ip, ready) in addresses {
                out.sample(
                    "kube_endpoint_address",
                    &[
                        ("namespace", ns),
                        ("endpoint", name),
                        ("ip", &ip),
                        ("ready", bool_label(ready)),
                    ],
                    1.0,
                );
            }
        }
    }
}
