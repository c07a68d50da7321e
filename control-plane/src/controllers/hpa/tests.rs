//! Upstream's controller scenarios (`horizontal_test.go`), reconciled by `plan` against fixed metrics at
//! a fixed time.

use std::collections::BTreeMap;

use k8s_openapi::api::core::v1::{Container, PodCondition, PodSpec, PodStatus, ResourceRequirements};
use serde_json::json;

use super::*;

fn now() -> Timestamp {
    "2026-11-30T12:00:00Z".parse().unwrap()
}

/// What the fake metrics APIs answer.
#[derive(Default)]
struct Fake {
    /// Per pod, `cpu` usage in milli-cores.
    cpu: BTreeMap<String, i64>,
    pods: Option<BTreeMap<String, i64>>,
    object: Option<i64>,
    external: Option<Vec<i64>>,
}

fn metric(value_milli: i64) -> replicas::PodMetric {
    replicas::PodMetric {
        value_milli,
        timestamp: now(),
        window: Duration::from_secs(30),
    }
}

#[async_trait::async_trait]
impl MetricsClient for Fake {
    async fn resource(
        &self,
        _: &str,
        _: &str,
        resource: &str,
        _: Option<&str>,
    ) -> Result<BTreeMap<String, replicas::PodMetric>, String> {
        if resource != "cpu" || self.cpu.is_empty() {
            return Err("no metrics returned from resource metrics API".into());
        }
        Ok(self.cpu.iter().map(|(n, v)| (n.clone(), metric(*v))).collect())
    }

    async fn pods(
        &self,
        _: &str,
        _: &str,
        _: &str,
        _: &str,
    ) -> Result<BTreeMap<String, replicas::PodMetric>, String> {
        let pods = self
            .pods
            .as_ref()
            .ok_or("unable to fetch metrics from custom metrics API: the server could not find the requested resource")?;
        Ok(pods.iter().map(|(n, v)| (n.clone(), metric(*v))).collect())
    }

    async fn object(
        &self,
        _: &str,
        _: &CrossVersionObjectReference,
        _: &str,
        _: &str,
    ) -> Result<i64, String> {
        self.object.ok_or_else(|| "no object metric".into())
    }

    async fn external(&self, _: &str, _: &str, _: &str) -> Result<Vec<i64>, String> {
        self.external
            .clone()
            .ok_or_else(|| "no metrics returned from external metrics API".into())
    }
}

/// A running pod, ready for an hour, requesting one core.
fn pod(name: &str) -> Pod {
    let long_ago = Time(now() - jiff::SignedDuration::from_hours(1));
    Pod {
        metadata: kube::api::ObjectMeta {
            name: Some(name.into()),
            namespace: Some("default".into()),
            ..Default::default()
        },
        spec: Some(PodSpec {
            containers: vec![Container {
                name: "web".into(),
                resources: Some(ResourceRequirements {
                    requests: Some(BTreeMap::from([("cpu".to_string(), Quantity("1".into()))])),
                    ..Default::default()
                }),
                ..Default::default()
            }],
            ..Default::default()
        }),
        status: Some(PodStatus {
            phase: Some("Running".into()),
            start_time: Some(long_ago.clone()),
            conditions: Some(vec![PodCondition {
                type_: "Ready".into(),
                status: "True".into(),
                last_transition_time: Some(long_ago),
                ..Default::default()
            }]),
            ..Default::default()
        }),
    }
}

fn pods(n: usize) -> Vec<Pod> {
    (0..n).map(|i| pod(&format!("web-{i}"))).collect()
}

fn hpa(spec: serde_json::Value) -> HorizontalPodAutoscaler {
    let mut spec = spec;
    spec["scaleTargetRef"] = json!({"apiVersion": "apps/v1", "kind": "Deployment", "name": "web"});
    serde_json::from_value(json!({
        "apiVersion": "autoscaling/v2", "kind": "HorizontalPodAutoscaler",
        "metadata": {"name": "web", "namespace": "default", "uid": "u"},
        "spec": spec,
    }))
    .unwrap()
}

fn cpu_hpa(target: i32, min: i32, max: i32) -> HorizontalPodAutoscaler {
    hpa(json!({"minReplicas": min, "maxReplicas": max, "metrics": [
        {"type": "Resource", "resource": {"name": "cpu", "target": {"type": "Utilization", "averageUtilization": target}}}]}))
}

struct Run {
    config: HpaConfig,
    histories: Histories,
}

impl Run {
    /// A controller whose HPA has no recommendation yet: upstream's tests start from an empty list so
    /// that scale-down is not held by the initial one.
    fn fresh() -> Run {
        let run = Run {
            config: HpaConfig::default(),
            histories: Histories::default(),
        };
        run.histories.with("u", |h| h.clear_recommendations());
        run
    }

    async fn plan(&self, hpa: &HorizontalPodAutoscaler, current: i32, pods: &[Pod], metrics: &Fake) -> Plan {
        let target = Target {
            spec_replicas: current,
            status_replicas: current,
            selector: "app=web".into(),
        };
        let pods = Ok(pods.to_vec());
        plan(&self.config, metrics, &self.histories, hpa, &target, &pods, now()).await
    }
}

fn cpu(values: &[i64]) -> Fake {
    Fake {
        cpu: values
            .iter()
            .enumerate()
            .map(|(i, v)| (format!("web-{i}"), *v))
            .collect(),
        ..Default::default()
    }
}

fn reasons(plan: &Plan) -> Vec<(&'static str, String)> {
    plan.conditions
        .iter()
        .map(|c| (c.type_, c.reason.clone()))
        .collect()
}

#[tokio::test]
async fn scale_up() {
    // TestScaleUp: 3 pods at 30/50/70 % of a core against 30 % → 5.
    let plan = Run::fresh()
        .plan(&cpu_hpa(30, 2, 6), 3, &pods(3), &cpu(&[300, 500, 700]))
        .await;
    assert_eq!((plan.desired, plan.rescale), (5, true));
    assert_eq!(
        plan.reason,
        "cpu resource utilization (percentage of request) above target"
    );
    assert_eq!(
        reasons(&plan),
        [
            ("ScalingActive", "ValidMetricFound".to_string()),
            ("AbleToScale", "ReadyForNewScale".to_string()),
            ("ScalingLimited", "DesiredWithinRange".to_string()),
        ]
    );
    let status = plan.statuses[0].resource.as_ref().unwrap();
    assert_eq!(status.current.average_utilization, Some(50));
    assert_eq!(status.current.average_value, Some(Quantity("500m".into())));
    let decision = plan.decision.unwrap();
    assert_eq!(decision.metrics[0].value, "50%/30%");
}

#[tokio::test]
async fn scale_down_and_the_initial_recommendation() {
    // TestScaleDown: 5 pods at 28 % against 50 % → 3, "All metrics below target".
    let hpa = cpu_hpa(50, 2, 6);
    let metrics = cpu(&[100, 300, 500, 250, 250]);
    let plan = Run::fresh().plan(&hpa, 5, &pods(5), &metrics).await;
    assert_eq!(
        (plan.desired, plan.reason.as_str()),
        (3, "All metrics below target")
    );
    // A controller meeting the HPA for the first time remembers the current count: no scale-down
    // within the stabilization window (TestScaleDownStabilizeInitialSize).
    let run = Run {
        config: HpaConfig::default(),
        histories: Histories::default(),
    };
    let plan = run.plan(&hpa, 5, &pods(5), &metrics).await;
    assert_eq!((plan.desired, plan.rescale), (5, false));
    assert!(reasons(&plan).contains(&("AbleToScale", "ScaleDownStabilized".to_string())));
    let decision = plan.decision.expect("a refusal is explained");
    let normalization = decision.normalization.unwrap();
    assert_eq!((normalization.recommended, normalization.stabilized), (3, 5));
}

#[tokio::test]
async fn pods_object_and_external_metrics() {
    let run = Run::fresh();
    // TestScaleUpCM: a Pods metric averaging 20 against 15 → 4.
    let pods_hpa = hpa(json!({"maxReplicas": 6, "metrics": [{"type": "Pods", "pods": {
        "metric": {"name": "qps"}, "target": {"type": "AverageValue", "averageValue": "15"}}}]}));
    let fake = Fake {
        pods: Some(BTreeMap::from([
            ("web-0".to_string(), 20000),
            ("web-1".to_string(), 10000),
            ("web-2".to_string(), 30000),
        ])),
        ..Default::default()
    };
    let plan = run.plan(&pods_hpa, 3, &pods(3), &fake).await;
    assert_eq!(
        (plan.desired, plan.reason.as_str()),
        (4, "pods metric qps above target")
    );
    // TestScaleUpCMObject: 20 against 15 with 3 ready pods → 4.
    let object_hpa = hpa(
        json!({"maxReplicas": 6, "metrics": [{"type": "Object", "object": {
        "describedObject": {"apiVersion": "apps/v1", "kind": "Deployment", "name": "web"},
        "metric": {"name": "qps"}, "target": {"type": "Value", "value": "15"}}}]}),
    );
    let fake = Fake {
        object: Some(20000),
        ..Default::default()
    };
    let plan = run.plan(&object_hpa, 3, &pods(3), &fake).await;
    assert_eq!(
        (plan.desired, plan.reason.as_str()),
        (4, "Deployment metric qps above target")
    );
    // TestScaleUpCMExternal-like: two series summing to 8.6 against 4.4 per the one ready pod → 2;
    // the description carries the selector as upstream prints it.
    let external_hpa = hpa(
        json!({"maxReplicas": 6, "metrics": [{"type": "External", "external": {
        "metric": {"name": "queue", "selector": {"matchLabels": {"q": "a"}}},
        "target": {"type": "AverageValue", "averageValue": "4400m"}}}]}),
    );
    let fake = Fake {
        external: Some(vec![5000, 3600]),
        ..Default::default()
    };
    // (A controller of its own: the HPA above recommended 4 within the downscale window.)
    let plan = Run::fresh().plan(&external_hpa, 1, &pods(1), &fake).await;
    assert_eq!(plan.desired, 2);
    assert_eq!(
        plan.reason,
        "external metric queue(&LabelSelector{MatchLabels:map[string]string{q: a,},MatchExpressions:[]LabelSelectorRequirement{},}) above target"
    );
    let status = plan.statuses[0].external.as_ref().unwrap();
    assert_eq!(status.current.average_value, Some(Quantity("8600m".into())));
}

#[tokio::test]
async fn several_metrics_take_the_largest_and_failures_block_scale_down() {
    let run = Run::fresh();
    let both = hpa(json!({"maxReplicas": 10, "metrics": [
        {"type": "Resource", "resource": {"name": "cpu", "target": {"type": "Utilization", "averageUtilization": 50}}},
        {"type": "Pods", "pods": {"metric": {"name": "qps"}, "target": {"type": "AverageValue", "averageValue": "10"}}}]}));
    // CPU asks 6, qps 3 → 6, named after CPU.
    let mut fake = cpu(&[1000, 1000, 1000]);
    fake.pods = Some((0..3).map(|i| (format!("web-{i}"), 10000)).collect());
    let plan = run.plan(&both, 3, &pods(3), &fake).await;
    assert_eq!(plan.desired, 6);
    assert!(plan.reason.starts_with("cpu resource utilization"));
    // qps fails, CPU asks for more: scale anyway (TestScaleUpOneMetricInvalid).
    fake.pods = None;
    let plan = run.plan(&both, 3, &pods(3), &fake).await;
    assert_eq!((plan.desired, plan.failed), (6, None));
    assert!(plan.events.iter().any(|e| e.reason == "FailedGetPodsMetric"));
    // qps fails, CPU asks for fewer: nothing moves (TestScaleDownOneMetricInvalid).
    let plan = run.plan(&both, 3, &pods(3), &cpu(&[100, 100, 100])).await;
    assert!(!plan.rescale);
    let failed = plan.failed.clone().unwrap();
    assert!(failed.starts_with("invalid metrics (1 invalid out of 2), first error is: failed to get pods metric value: unable to get metric qps:"), "{failed}");
    assert_eq!(
        reasons(&plan),
        [("ScalingActive", "FailedGetPodsMetric".to_string())]
    );
    assert_eq!(
        plan.events.last().map(|e| (e.reason, e.warning)),
        Some(("FailedComputeMetricsReplicas", true))
    );
}

#[tokio::test]
async fn min_max_and_zero_replicas() {
    let run = Run::fresh();
    let metrics = cpu(&[500, 500]);
    // TestTooFewReplicas / TestTooManyReplicas: the bounds apply before any metric.
    let plan = run.plan(&cpu_hpa(50, 3, 5), 2, &pods(2), &metrics).await;
    assert_eq!(
        (plan.desired, plan.reason.as_str()),
        (3, "Current number of replicas below Spec.MinReplicas")
    );
    let plan = run.plan(&cpu_hpa(50, 1, 5), 7, &pods(2), &metrics).await;
    assert_eq!(
        (plan.desired, plan.reason.as_str()),
        (5, "Current number of replicas above Spec.MaxReplicas")
    );
    // TestZeroReplicas: a target scaled to zero is left alone.
    let plan = run.plan(&cpu_hpa(50, 1, 5), 0, &[], &metrics).await;
    assert!(!plan.rescale);
    assert_eq!(reasons(&plan), [("ScalingActive", "ScalingDisabled".to_string())]);
    // Scaling up beyond maxReplicas is clamped: TooManyReplicas.
    let plan = run.plan(&cpu_hpa(10, 1, 4), 2, &pods(2), &cpu(&[900, 900])).await;
    assert_eq!(plan.desired, 4);
    assert!(reasons(&plan).contains(&("ScalingLimited", "TooManyReplicas".to_string())));
}

#[tokio::test]
async fn missing_cpu_requests_and_metrics_say_so() {
    let run = Run::fresh();
    let mut no_request = pod("web-0");
    no_request.spec.as_mut().unwrap().containers[0].resources = None;
    let plan = run.plan(&cpu_hpa(50, 1, 5), 1, &[no_request], &cpu(&[500])).await;
    assert!(!plan.rescale);
    let event = plan
        .events
        .iter()
        .find(|e| e.reason == "FailedGetResourceMetric")
        .unwrap();
    assert_eq!(
        event.message,
        "failed to get cpu utilization: missing request for cpu in container web of Pod web-0"
    );
    let plan = run.plan(&cpu_hpa(50, 1, 5), 1, &pods(1), &Fake::default()).await;
    assert_eq!(
        plan.failed.unwrap(),
        "invalid metrics (1 invalid out of 1), first error is: failed to get cpu resource metric value: failed to get cpu utilization: unable to get metrics for resource cpu: no metrics returned from resource metrics API"
    );
    let condition = &plan.conditions[0];
    assert_eq!(
        condition.message,
        "the HPA was unable to compute the replica count: failed to get cpu utilization: unable to get metrics for resource cpu: no metrics returned from resource metrics API"
    );
}

#[tokio::test]
async fn behavior_policies_limit_and_explain_scale_up() {
    let run = Run::fresh();
    // Default scale-up policies (4 pods or 100 % per 15 s): 1 → 5, not 10.
    let hpa = hpa(
        json!({"maxReplicas": 20, "behavior": {"scaleUp": {}}, "metrics": [
        {"type": "Resource", "resource": {"name": "cpu", "target": {"type": "Utilization", "averageUtilization": 10}}}]}),
    );
    let plan = run.plan(&hpa, 1, &pods(1), &cpu(&[1000])).await;
    assert_eq!(plan.desired, 5);
    assert!(reasons(&plan).contains(&("ScalingLimited", "ScaleUpLimit".to_string())));
    let decision = plan.decision.unwrap();
    assert_eq!(
        decision.summary(),
        "cpu resource utilization (percentage of request) 100%/10% asks 10, limited to 5 by ScaleUpLimit"
    );
}

#[test]
fn quantities_print_as_upstream() {
    assert_eq!(milli_quantity(500).0, "500m");
    assert_eq!(milli_quantity(3000).0, "3");
    assert_eq!(milli_quantity(2_000_000).0, "2k");
    assert_eq!(milli_quantity(0).0, "0");
    assert_eq!(milli_quantity(52_428_800_000).0, "52428800");
    assert_eq!(go_selector(None), "<nil>");
}

#[test]
fn conditions_keep_their_transition_time_while_the_status_holds() {
    let mut list = Vec::new();
    let c = condition("AbleToScale", true, "SucceededGetScale", "x");
    set_condition(&mut list, &c, now());
    let later = now() + jiff::SignedDuration::from_secs(10);
    set_condition(
        &mut list,
        &condition("AbleToScale", true, "ReadyForNewScale", "y"),
        later,
    );
    assert_eq!(list[0].last_transition_time, Some(Time(now())));
    assert_eq!(list[0].reason.as_deref(), Some("ReadyForNewScale"));
    set_condition(
        &mut list,
        &condition("AbleToScale", false, "FailedGetScale", "z"),
        later,
    );
    assert_eq!(list[0].last_transition_time, Some(Time(later)));
}

#[tokio::test]
async fn selector_refusals_and_unknown_readiness() {
    let run = Run::fresh();
    let target = Target {
        spec_replicas: 2,
        status_replicas: 2,
        selector: String::new(),
    };
    let refused = Err(Refusal {
        event_reason: "SelectorRequired",
        event_message: "selector is required".into(),
        reason: "InvalidSelector",
        message: "the HPA target's scale is missing a selector".into(),
    });
    let hpa = cpu_hpa(50, 3, 5);
    // Below minReplicas the count is fixed without looking at the selector.
    let plan = plan(
        &run.config,
        &cpu(&[]),
        &run.histories,
        &hpa,
        &target,
        &refused,
        now(),
    )
    .await;
    assert_eq!((plan.desired, plan.rescale), (3, true));
    // Within bounds, the missing selector stops the metrics.
    let hpa = cpu_hpa(50, 1, 5);
    let plan = super::plan(
        &run.config,
        &cpu(&[]),
        &run.histories,
        &hpa,
        &target,
        &refused,
        now(),
    )
    .await;
    assert!(!plan.rescale);
    assert_eq!(reasons(&plan), [("ScalingActive", "InvalidSelector".to_string())]);
    let events: Vec<&str> = plan.events.iter().map(|e| e.reason).collect();
    assert_eq!(events, ["SelectorRequired", "FailedComputeMetricsReplicas"]);
    // A pod whose readiness is Unknown is not unready for CPU (upstream tests for False).
    let mut unknown = pod("web-1");
    unknown.status.as_mut().unwrap().conditions.as_mut().unwrap()[0].status = "Unknown".into();
    let plan = run
        .plan(
            &cpu_hpa(50, 1, 5),
            2,
            &[pod("web-0"), unknown],
            &cpu(&[1000, 1000]),
        )
        .await;
    let pods = plan.decision.unwrap().metrics[0].pods.clone().unwrap();
    assert_eq!((pods.ready, pods.unready.len()), (2, 0));
}

#[test]
fn memory_in_binary_si() {
    assert_eq!(resource_quantity("memory", 100 * 1024 * 1024 * 1000).0, "100Mi");
    assert_eq!(resource_quantity("memory", 1500).0, "1500m");
    assert_eq!(resource_quantity("cpu", 250).0, "250m");
}
