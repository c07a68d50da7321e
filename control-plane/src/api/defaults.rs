//! Decoding into the real Kubernetes types, and upstream's defaulting (k/k `pkg/apis/*/v1/defaults.go`).
//!
//! Every written object passes through its `k8s-openapi` type: that is the type check (a string where a
//! number belongs is a 400, as upstream), it drops unknown fields (reported under strict field validation),
//! and it is where the defaults are set, on typed fields rather than JSON paths.

use k8s_openapi::api::apps::v1::{Deployment, DeploymentStrategy, ReplicaSet, RollingUpdateDeployment};
use k8s_openapi::api::autoscaling::v2::{
    HPAScalingPolicy, HPAScalingRules, HorizontalPodAutoscaler, MetricSpec, MetricTarget,
    ResourceMetricSource,
};
use k8s_openapi::api::coordination::v1::Lease;
use k8s_openapi::api::core::v1::{
    ConfigMap, Container, Endpoints, Event, Namespace, NamespaceSpec, NamespaceStatus, Node, Pod, PodSpec,
    PodStatus, Probe, Secret, Service, ServiceSpec,
};
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;
use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::Value;

use super::error::ApiError;

/// Decodes `object` as its kind's type, applies defaults, and returns it re-encoded. Unknown fields are
/// dropped, or rejected when `strict`.
pub fn normalize(kind: &str, version: &str, object: Value, strict: bool) -> Result<Value, ApiError> {
    match kind {
        "Pod" => typed::<Pod>(kind, version, object, strict, default_pod),
        "Deployment" => typed::<Deployment>(kind, version, object, strict, default_deployment),
        "ReplicaSet" => typed::<ReplicaSet>(kind, version, object, strict, default_replica_set),
        "Service" => typed::<Service>(kind, version, object, strict, default_service),
        "Namespace" => typed::<Namespace>(kind, version, object, strict, default_namespace),
        "HorizontalPodAutoscaler" => {
            typed::<HorizontalPodAutoscaler>(kind, version, object, strict, default_hpa)
        }
        "Secret" => typed::<Secret>(kind, version, object, strict, |s| {
            s.type_.get_or_insert_with(|| "Opaque".into());
        }),
        "ConfigMap" => typed::<ConfigMap>(kind, version, object, strict, |_| {}),
        "Endpoints" => typed::<Endpoints>(kind, version, object, strict, |_| {}),
        "EndpointSlice" => {
            typed::<k8s_openapi::api::discovery::v1::EndpointSlice>(kind, version, object, strict, |_| {})
        }
        "Event" => typed::<Event>(kind, version, object, strict, |_| {}),
        "Node" => typed::<Node>(kind, version, object, strict, |_| {}),
        "Lease" => typed::<Lease>(kind, version, object, strict, |_| {}),
        other => Err(ApiError::Internal(format!("no type registered for kind {other}"))),
    }
}

fn typed<T: DeserializeOwned + Serialize>(
    kind: &str,
    version: &str,
    object: Value,
    strict: bool,
    defaults: impl FnOnce(&mut T),
) -> Result<Value, ApiError> {
    let cannot = |detail: String| {
        ApiError::BadRequest(format!(
            "{kind} in version \"{version}\" cannot be handled as a {kind}: {detail}"
        ))
    };
    let mut typed: T = serde_path_to_error::deserialize(&object).map_err(|e| {
        let path = e.path().to_string();
        if path == "." {
            cannot(e.inner().to_string())
        } else {
            cannot(format!("{path}: {}", e.inner()))
        }
    })?;
    if strict {
        let plain = serde_json::to_value(&typed).map_err(|e| ApiError::Internal(e.to_string()))?;
        let mut unknown = Vec::new();
        unknown_fields(&object, &plain, String::new(), &mut unknown);
        if !unknown.is_empty() {
            let list: Vec<String> = unknown.iter().map(|f| format!("unknown field \"{f}\"")).collect();
            return Err(cannot(format!("strict decoding error: {}", list.join(", "))));
        }
    }
    defaults(&mut typed);
    serde_json::to_value(&typed).map_err(|e| ApiError::Internal(e.to_string()))
}

/// Fields of `input` that did not survive decoding into the typed `output`.
fn unknown_fields(input: &Value, output: &Value, path: String, out: &mut Vec<String>) {
    match (input, output) {
        (Value::Object(i), Value::Object(o)) => {
            for (key, value) in i {
                let child = if path.is_empty() {
                    key.clone()
                } else {
                    format!("{path}.{key}")
                };
                match o.get(key) {
                    Some(inner) => unknown_fields(value, inner, child, out),
                    None if !value.is_null() => out.push(child),
                    None => {}
                }
            }
        }
        (Value::Array(i), Value::Array(o)) => {
            for (n, (value, inner)) in i.iter().zip(o).enumerate() {
                unknown_fields(value, inner, format!("{path}[{n}]"), out);
            }
        }
        _ => {}
    }
}

fn default_pod(pod: &mut Pod) {
    let spec = pod.spec.get_or_insert_with(Default::default);
    default_pod_spec(spec);
    let status = pod.status.get_or_insert_with(PodStatus::default);
    status.phase.get_or_insert_with(|| "Pending".into());
    status.qos_class.get_or_insert_with(|| qos_class(spec).into());
}

pub(crate) fn default_pod_spec(spec: &mut PodSpec) {
    spec.restart_policy.get_or_insert_with(|| "Always".into());
    spec.dns_policy.get_or_insert_with(|| "ClusterFirst".into());
    spec.termination_grace_period_seconds.get_or_insert(30);
    spec.scheduler_name
        .get_or_insert_with(|| "default-scheduler".into());
    spec.security_context.get_or_insert_with(Default::default);
    spec.enable_service_links.get_or_insert(true);
    for container in spec
        .containers
        .iter_mut()
        .chain(spec.init_containers.iter_mut().flatten())
    {
        default_container(container);
    }
}

fn default_container(c: &mut Container) {
    c.termination_message_path
        .get_or_insert_with(|| "/dev/termination-log".into());
    c.termination_message_policy.get_or_insert_with(|| "File".into());
    c.resources.get_or_insert_with(Default::default);
    if c.image_pull_policy.is_none() {
        let image = c.image.as_deref().unwrap_or_default();
        // A tag is what follows the last ':' after the last '/'; digests pin too.
        let last = image.rsplit('/').next().unwrap_or_default();
        let tag = last.split_once(':').map(|(_, t)| t);
        let pinned = image.contains('@') || tag.is_some_and(|t| t != "latest");
        c.image_pull_policy = Some(if pinned { "IfNotPresent" } else { "Always" }.into());
    }
    for port in c.ports.iter_mut().flatten() {
        port.protocol.get_or_insert_with(|| "TCP".into());
    }
    for probe in [
        &mut c.liveness_probe,
        &mut c.readiness_probe,
        &mut c.startup_probe,
    ]
    .into_iter()
    .flatten()
    {
        default_probe(probe);
    }
}

fn default_probe(p: &mut Probe) {
    p.timeout_seconds.get_or_insert(1);
    p.period_seconds.get_or_insert(10);
    p.success_threshold.get_or_insert(1);
    p.failure_threshold.get_or_insert(3);
    if let Some(http) = &mut p.http_get {
        http.scheme.get_or_insert_with(|| "HTTP".into());
        http.path.get_or_insert_with(|| "/".into());
    }
}

/// Upstream's QoS classes: Guaranteed when every container's requests equal its limits for cpu and memory,
/// BestEffort when nothing is set, Burstable otherwise.
fn qos_class(spec: &PodSpec) -> &'static str {
    let containers = || {
        spec.containers
            .iter()
            .chain(spec.init_containers.iter().flatten())
    };
    let empty = containers().all(|c| {
        c.resources.as_ref().is_none_or(|r| {
            r.requests.as_ref().is_none_or(|m| m.is_empty()) && r.limits.as_ref().is_none_or(|m| m.is_empty())
        })
    });
    if empty {
        return "BestEffort";
    }
    let guaranteed = containers().all(|c| {
        let Some(resources) = &c.resources else {
            return false;
        };
        let limits = resources.limits.clone().unwrap_or_default();
        let requests = resources.requests.clone().unwrap_or_default();
        ["cpu", "memory"].iter().all(|r| {
            limits
                .get(*r)
                .is_some_and(|limit| requests.get(*r).is_none_or(|request| request == limit))
        })
    });
    if guaranteed { "Guaranteed" } else { "Burstable" }
}

fn default_deployment(d: &mut Deployment) {
    let spec = d.spec.get_or_insert_with(Default::default);
    spec.replicas.get_or_insert(1);
    spec.revision_history_limit.get_or_insert(10);
    spec.progress_deadline_seconds.get_or_insert(600);
    let strategy = spec.strategy.get_or_insert_with(DeploymentStrategy::default);
    let kind = strategy.type_.get_or_insert_with(|| "RollingUpdate".into());
    if kind == "RollingUpdate" {
        let rolling = strategy
            .rolling_update
            .get_or_insert_with(RollingUpdateDeployment::default);
        rolling
            .max_unavailable
            .get_or_insert_with(|| IntOrString::String("25%".into()));
        rolling
            .max_surge
            .get_or_insert_with(|| IntOrString::String("25%".into()));
    }
    if let Some(pod) = spec.template.spec.as_mut() {
        default_pod_spec(pod);
    }
}

fn default_replica_set(rs: &mut ReplicaSet) {
    let spec = rs.spec.get_or_insert_with(Default::default);
    spec.replicas.get_or_insert(1);
    if let Some(pod) = spec.template.as_mut().and_then(|t| t.spec.as_mut()) {
        default_pod_spec(pod);
    }
}

fn default_service(s: &mut Service) {
    let spec = s.spec.get_or_insert_with(ServiceSpec::default);
    let kind = spec.type_.get_or_insert_with(|| "ClusterIP".into()).clone();
    spec.session_affinity.get_or_insert_with(|| "None".into());
    if kind != "ExternalName" {
        spec.internal_traffic_policy
            .get_or_insert_with(|| "Cluster".into());
    }
    for port in spec.ports.iter_mut().flatten() {
        port.protocol.get_or_insert_with(|| "TCP".into());
        if port.target_port.is_none() {
            port.target_port = Some(IntOrString::Int(port.port));
        }
    }
    s.status.get_or_insert_with(Default::default);
}

fn default_namespace(ns: &mut Namespace) {
    ns.spec.get_or_insert_with(|| NamespaceSpec {
        finalizers: Some(vec!["kubernetes".into()]),
    });
    let status = ns.status.get_or_insert_with(NamespaceStatus::default);
    status.phase.get_or_insert_with(|| "Active".into());
}

/// `SetDefaults_HorizontalPodAutoscaler` and `SetDefaults_HorizontalPodAutoscalerBehavior` (autoscaling/v2).
fn default_hpa(hpa: &mut HorizontalPodAutoscaler) {
    let spec = hpa.spec.get_or_insert_with(Default::default);
    spec.min_replicas.get_or_insert(1);
    if spec.metrics.as_ref().is_none_or(Vec::is_empty) {
        spec.metrics = Some(vec![MetricSpec {
            type_: "Resource".into(),
            resource: Some(ResourceMetricSource {
                name: "cpu".into(),
                target: MetricTarget {
                    type_: "Utilization".into(),
                    average_utilization: Some(80),
                    ..Default::default()
                },
            }),
            ..Default::default()
        }]);
    }
    // Behavior defaults only fill a behavior the HPA has: without one the controller takes its legacy
    // path. The scale-down window stays unset, for the controller's flag.
    let Some(behavior) = spec.behavior.as_mut() else {
        return;
    };
    let policy = |type_: &str, value: i32| HPAScalingPolicy {
        type_: type_.into(),
        value,
        period_seconds: 15,
    };
    let up = behavior.scale_up.get_or_insert_with(HPAScalingRules::default);
    up.stabilization_window_seconds.get_or_insert(0);
    up.select_policy.get_or_insert_with(|| "Max".into());
    up.policies
        .get_or_insert_with(|| vec![policy("Pods", 4), policy("Percent", 100)]);
    let down = behavior.scale_down.get_or_insert_with(HPAScalingRules::default);
    down.select_policy.get_or_insert_with(|| "Max".into());
    down.policies.get_or_insert_with(|| vec![policy("Percent", 100)]);
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn deployment_defaults_match_upstream() {
        let d = json!({"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "web"},
            "spec": {"selector": {"matchLabels": {"app": "web"}}, "template": {"metadata": {"labels": {"app": "web"}},
            "spec": {"containers": [{"name": "web", "image": "nginx:1.25", "ports": [{"containerPort": 80}]}]}}}});
        let d = normalize("Deployment", "v1", d, true).unwrap();
        assert_eq!(d["spec"]["replicas"], 1);
        assert_eq!(
            d["spec"]["strategy"],
            json!({"type": "RollingUpdate",
            "rollingUpdate": {"maxUnavailable": "25%", "maxSurge": "25%"}})
        );
        assert_eq!(d["spec"]["revisionHistoryLimit"], 10);
        assert_eq!(d["spec"]["progressDeadlineSeconds"], 600);
        let c = &d["spec"]["template"]["spec"]["containers"][0];
        assert_eq!(c["imagePullPolicy"], "IfNotPresent");
        assert_eq!(c["ports"][0]["protocol"], "TCP");
        assert_eq!(c["resources"], json!({}));
        assert_eq!(d["spec"]["template"]["spec"]["restartPolicy"], "Always");
    }

    #[test]
    fn strict_decoding_reports_unknown_fields_and_type_errors() {
        let d = json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "x", "bogus": 1},
            "data": {"a": "b"}, "extra": true});
        let e = normalize("ConfigMap", "v1", d.clone(), true).unwrap_err();
        assert_eq!(
            e.to_string(),
            "ConfigMap in version \"v1\" cannot be handled as a ConfigMap: strict decoding error: \
             unknown field \"extra\", unknown field \"metadata.bogus\""
        );
        assert!(normalize("ConfigMap", "v1", d, false).is_ok());
        let bad = json!({"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "x"},
            "spec": {"replicas": "three"}});
        let e = normalize("Deployment", "v1", bad, false).unwrap_err();
        assert!(e.to_string().contains("spec.replicas"), "{e}");
    }

    #[test]
    fn pod_defaults_and_qos() {
        let p = json!({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "p"}, "spec": {"containers": [
            {"name": "a", "image": "busybox", "resources": {"limits": {"cpu": "1", "memory": "1Gi"}},
             "readinessProbe": {"httpGet": {"port": 80}}}]}});
        let p = normalize("Pod", "v1", p, true).unwrap();
        assert_eq!(p["status"]["qosClass"], "Guaranteed");
        assert_eq!(p["status"]["phase"], "Pending");
        let c = &p["spec"]["containers"][0];
        assert_eq!(c["imagePullPolicy"], "Always");
        assert_eq!(c["readinessProbe"]["periodSeconds"], 10);
        assert_eq!(c["readinessProbe"]["httpGet"]["scheme"], "HTTP");
    }

    #[test]
    fn hpa_defaults() {
        let h = json!({"apiVersion": "autoscaling/v2", "kind": "HorizontalPodAutoscaler", "metadata": {"name": "w"},
            "spec": {"scaleTargetRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": "w"}, "maxReplicas": 5}});
        let h = normalize("HorizontalPodAutoscaler", "v2", h, true).unwrap();
        assert_eq!(h["spec"]["minReplicas"], 1);
        assert_eq!(
            h["spec"]["metrics"][0]["resource"]["target"]["averageUtilization"],
            80
        );
        assert!(h["spec"].get("behavior").is_none(), "no behavior, no defaults");
        let h = json!({"apiVersion": "autoscaling/v2", "kind": "HorizontalPodAutoscaler", "metadata": {"name": "w"},
            "spec": {"scaleTargetRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": "w"}, "maxReplicas": 5,
                     "behavior": {"scaleUp": {"stabilizationWindowSeconds": 30}}}});
        let h = normalize("HorizontalPodAutoscaler", "v2", h, true).unwrap();
        let b = &h["spec"]["behavior"];
        assert_eq!(b["scaleUp"]["stabilizationWindowSeconds"], 30);
        assert_eq!(b["scaleUp"]["policies"].as_array().unwrap().len(), 2);
        assert_eq!(b["scaleDown"]["selectPolicy"], "Max");
        assert!(
            b["scaleDown"].get("stabilizationWindowSeconds").is_none(),
            "the controller's flag decides"
        );
    }
}
