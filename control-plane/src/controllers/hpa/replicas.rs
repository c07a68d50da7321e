//! The HPA's replica calculation (k/k `pkg/controller/podautoscaler/replica_calculator.go`,
//! `metrics/utilization.go`; `spec/hpa.md` §1.2–§1.7):
//! - per-pod metrics (Resource, ContainerResource, Pods): pods grouped into ready, unready, missing and
//!   ignored; a utilization target uses the truncated integer percentage of the requests, a value target
//!   the integer average; missing pods count at their request (or the target) when scaling down and at
//!   zero when scaling up, unready pods at zero when scaling up; no change within the tolerance or when
//!   rebalancing flips the direction;
//! - single values (Object, External): the ratio to the target times the ready pods, or the value over
//!   the per-pod target.

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

/// The status of a pod's `Ready` condition.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Ready {
    True,
    False,
    Unknown,
}

/// `t + d`, or the end of time when that is past it.
fn later(t: jiff::Timestamp, d: Duration) -> jiff::Timestamp {
    t.checked_add(d).unwrap_or(jiff::Timestamp::MAX)
}

/// A pod as the calculation sees it.
#[derive(Clone, Debug)]
pub struct PodInfo {
    pub name: String,
    /// `Pending`, `Running`, `Succeeded`, `Failed`.
    pub phase: String,
    pub deleting: bool,
    /// The `Ready` condition: its status and when it last changed.
    pub ready: Option<(Ready, jiff::Timestamp)>,
    pub start_time: Option<jiff::Timestamp>,
    /// The request of the resource (the sum over its containers, or the one container a
    /// ContainerResource metric names), in milli-units; `Err` names a container without one.
    pub request_milli: Result<i64, String>,
}

/// A pod's value from a metrics API.
#[derive(Clone, Copy, Debug)]
pub struct PodMetric {
    pub value_milli: i64,
    pub timestamp: jiff::Timestamp,
    pub window: Duration,
}

/// The tolerance band around a ratio of 1 inside which nothing scales (`Tolerances.isWithin`).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Tolerances {
    pub down: f64,
    pub up: f64,
}

impl Tolerances {
    pub fn within(&self, ratio: f64) -> bool {
        (1.0 - self.down..=1.0 + self.up).contains(&ratio)
    }
}

/// The controller's settings for the calculation (upstream's flags, the tolerance possibly per HPA).
#[derive(Clone, Copy, Debug)]
pub struct Settings {
    pub tolerances: Tolerances,
    pub cpu_initialization_period: Duration,
    pub initial_readiness_delay: Duration,
}

impl Default for Settings {
    fn default() -> Settings {
        Settings {
            tolerances: Tolerances { down: 0.1, up: 0.1 },
            cpu_initialization_period: Duration::from_secs(300),
            initial_readiness_delay: Duration::from_secs(30),
        }
    }
}

/// How the pods were counted: the ready ones, and the names of the others.
#[derive(Clone, Debug, Default, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "camelCase")]
pub struct PodGroups {
    pub ready: usize,
    #[serde(skip_serializing_if = "BTreeSet::is_empty")]
    pub unready: BTreeSet<String>,
    #[serde(skip_serializing_if = "BTreeSet::is_empty")]
    pub missing: BTreeSet<String>,
    #[serde(skip_serializing_if = "BTreeSet::is_empty")]
    pub ignored: BTreeSet<String>,
}

/// A per-pod metric's proposal: replicas, the current value reported in the status (the original one,
/// before rebalancing), and how the pods were counted.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Proposal {
    pub replicas: i32,
    /// The utilization in percent of the requests (utilization targets only).
    pub utilization: Option<i32>,
    /// The average value per pod, in milli-units.
    pub average_milli: i64,
    pub pods: PodGroups,
}

/// `groupPods` (§1.2); `cpu` applies the readiness rules of CPU samples.
fn group_pods(
    pods: &[PodInfo],
    metrics: &BTreeMap<String, PodMetric>,
    cpu: bool,
    now: jiff::Timestamp,
    settings: &Settings,
) -> PodGroups {
    let mut groups = PodGroups::default();
    for pod in pods {
        if pod.deleting || pod.phase == "Failed" {
            groups.ignored.insert(pod.name.clone());
            continue;
        }
        if pod.phase == "Pending" {
            groups.unready.insert(pod.name.clone());
            continue;
        }
        let Some(metric) = metrics.get(&pod.name) else {
            groups.missing.insert(pod.name.clone());
            continue;
        };
        if cpu {
            let unready = match (pod.ready, pod.start_time) {
                // `Unknown` is not `False`: upstream tests for `ConditionFalse`.
                (Some((ready, changed)), Some(start)) => {
                    if now < later(start, settings.cpu_initialization_period) {
                        ready == Ready::False || metric.timestamp < later(changed, metric.window)
                    } else {
                        ready == Ready::False && later(start, settings.initial_readiness_delay) > changed
                    }
                }
                _ => true,
            };
            if unready {
                groups.unready.insert(pod.name.clone());
                continue;
            }
        }
        groups.ready += 1;
    }
    groups
}

/// A replica count from a float, capped at the largest `int32` as upstream does.
fn ceil_replicas(value: f64) -> i32 {
    value.ceil().clamp(0.0, f64::from(i32::MAX)) as i32
}

/// The metrics of the pods that count (not ignored, not unready), by pod; an error when none is left.
fn counted_values(
    metrics: &BTreeMap<String, PodMetric>,
    groups: &PodGroups,
) -> Result<BTreeMap<String, i64>, String> {
    let values: BTreeMap<String, i64> = metrics
        .iter()
        .filter(|(name, _)| !groups.ignored.contains(*name) && !groups.unready.contains(*name))
        .map(|(n, m)| (n.clone(), m.value_milli))
        .collect();
    if values.is_empty() {
        return Err("did not receive metrics for targeted pods (pods might be unready)".into());
    }
    Ok(values)
}

/// Steps 6–11 of §1.3, shared by utilization and value targets: scale by the ratio over the ready pods
/// when every pod counted; otherwise fill in the missing pods (`fill_missing`, given the first ratio)
/// and, scaling up, the unready pods at zero, and scale by the new ratio unless it falls within the
/// tolerance or turns the direction around.
fn rebalance(
    current: i32,
    ratio: f64,
    groups: &PodGroups,
    mut values: BTreeMap<String, i64>,
    fill_missing: impl Fn(&str) -> Option<i64>,
    ratio_of: impl Fn(&BTreeMap<String, i64>) -> Result<f64, String>,
    tolerances: &Tolerances,
) -> Result<i32, String> {
    let scale_up_with_unready = !groups.unready.is_empty() && ratio > 1.0;
    if !scale_up_with_unready && groups.missing.is_empty() {
        if tolerances.within(ratio) {
            return Ok(current);
        }
        return Ok(ceil_replicas(ratio * groups.ready as f64));
    }
    for name in &groups.missing {
        if let Some(value) = fill_missing(name) {
            values.insert(name.clone(), value);
        }
    }
    if scale_up_with_unready {
        for name in &groups.unready {
            values.insert(name.clone(), 0);
        }
    }
    let new_ratio = ratio_of(&values)?;
    if tolerances.within(new_ratio) || (ratio < 1.0 && new_ratio > 1.0) || (ratio > 1.0 && new_ratio < 1.0) {
        return Ok(current);
    }
    let replicas = ceil_replicas(new_ratio * values.len() as f64);
    if (new_ratio < 1.0 && replicas > current) || (new_ratio > 1.0 && replicas < current) {
        return Ok(current);
    }
    Ok(replicas)
}

/// `GetResourceUtilizationRatio`: the truncated utilization percentage of the pods with a request,
/// its ratio to the target, and the raw average usage.
fn utilization_ratio(
    values: &BTreeMap<String, i64>,
    requests: &BTreeMap<String, i64>,
    target: i32,
) -> Result<(f64, i32, i64), String> {
    // Sums in i128: values come from the metrics APIs, up to i64::MAX each.
    let (mut usage, mut request, mut counted) = (0i128, 0i128, 0i128);
    for (name, value) in values {
        if let Some(r) = requests.get(name) {
            usage += i128::from(*value);
            request += i128::from(*r);
            counted += 1;
        }
    }
    if counted == 0 || request == 0 {
        return Err("no metrics returned matched known pods".into());
    }
    let utilization = (usage * 100 / request).clamp(0, i128::from(i32::MAX)) as i32;
    Ok((
        f64::from(utilization) / f64::from(target),
        utilization,
        (usage / counted).clamp(i128::from(i64::MIN), i128::from(i64::MAX)) as i64,
    ))
}

/// `GetResourceReplicas` for `resource` (`cpu` applies the readiness rules) and a target utilization
/// in percent.
pub fn utilization_replicas(
    current: i32,
    target_utilization: i32,
    resource: &str,
    pods: &[PodInfo],
    metrics: &BTreeMap<String, PodMetric>,
    now: jiff::Timestamp,
    settings: &Settings,
) -> Result<Proposal, String> {
    if metrics.is_empty() {
        return Err(format!(
            "unable to get metrics for resource {resource}: no metrics returned from resource metrics API"
        ));
    }
    if pods.is_empty() {
        return Err("no pods returned by selector while calculating replica count".into());
    }
    let groups = group_pods(pods, metrics, resource == "cpu", now, settings);
    let values = counted_values(metrics, &groups)?;
    let mut requests = BTreeMap::new();
    for pod in pods {
        let request = pod.request_milli.clone().map_err(|container| {
            format!(
                "missing request for {resource} in container {container} of Pod {}",
                pod.name
            )
        })?;
        requests.insert(pod.name.clone(), request);
    }
    let target = target_utilization.max(1);
    let (ratio, utilization, average_milli) = utilization_ratio(&values, &requests, target)?;
    let replicas = rebalance(
        current,
        ratio,
        &groups,
        values,
        |name| {
            let request = requests.get(name).copied().unwrap_or(0);
            if ratio < 1.0 {
                Some(request * i64::from(target.max(100)) / 100)
            } else if ratio > 1.0 {
                Some(0)
            } else {
                None
            }
        },
        |values| utilization_ratio(values, &requests, target).map(|(r, _, _)| r),
        &settings.tolerances,
    )?;
    Ok(Proposal {
        replicas,
        utilization: Some(utilization),
        average_milli,
        pods: groups,
    })
}

/// `GetMetricUsageRatio`: the integer average and its ratio to the target.
fn average_ratio(values: &BTreeMap<String, i64>, target_milli: i64) -> (f64, i64) {
    let sum: i128 = values.values().map(|v| i128::from(*v)).sum();
    let average =
        (sum / values.len().max(1) as i128).clamp(i128::from(i64::MIN), i128::from(i64::MAX)) as i64;
    (average as f64 / target_milli as f64, average)
}

/// `calcPlainMetricReplicas` (Resource AverageValue, ContainerResource AverageValue, Pods): the average
/// against a per-pod target; `resource` is the resource's name (`cpu` applies the readiness rules), empty
/// for Pods metrics.
pub fn average_value_replicas(
    current: i32,
    target_milli: i64,
    resource: &str,
    pods: &[PodInfo],
    metrics: &BTreeMap<String, PodMetric>,
    now: jiff::Timestamp,
    settings: &Settings,
) -> Result<Proposal, String> {
    if pods.is_empty() {
        return Err("no pods returned by selector while calculating replica count".into());
    }
    let target_milli = target_milli.max(1);
    let groups = group_pods(pods, metrics, resource == "cpu", now, settings);
    let values = counted_values(metrics, &groups)?;
    let (ratio, average_milli) = average_ratio(&values, target_milli);
    let replicas = rebalance(
        current,
        ratio,
        &groups,
        values,
        |_| Some(if ratio < 1.0 { target_milli } else { 0 }),
        |values| Ok(average_ratio(values, target_milli).0),
        &settings.tolerances,
    )?;
    Ok(Proposal {
        replicas,
        utilization: None,
        average_milli,
        pods: groups,
    })
}

/// The pods `getReadyPodsCount` counts: running and ready.
pub fn ready_pods(pods: &[PodInfo]) -> Result<usize, String> {
    if pods.is_empty() {
        return Err("no pods returned by selector while calculating replica count".into());
    }
    Ok(pods
        .iter()
        .filter(|p| p.phase == "Running" && p.ready.is_some_and(|(ready, _)| ready == Ready::True))
        .count())
}

/// `getUsageRatioReplicaCount` (Object and External `Value` targets): outside the tolerance, the ratio
/// times the ready pods; from zero replicas, the ratio itself (no tolerance).
pub fn value_replicas(
    current: i32,
    usage_milli: i64,
    target_milli: i64,
    ready_pods: impl FnOnce() -> Result<usize, String>,
    tolerances: &Tolerances,
) -> Result<i32, String> {
    let ratio = usage_milli as f64 / target_milli.max(1) as f64;
    if current == 0 {
        return Ok(ceil_replicas(ratio));
    }
    if tolerances.within(ratio) {
        return Ok(current);
    }
    let ready = ready_pods().map_err(|e| format!("unable to calculate ready pods: {e}"))?;
    Ok(ceil_replicas(ratio * ready as f64))
}

/// `GetObjectPerPodMetricReplicas` / `GetExternalPerPodMetricReplicas` (`AverageValue` targets): the
/// value over the per-pod target, unless the per-pod average of the current replicas is within the
/// tolerance; and that average (rounded up) for the status.
pub fn per_pod_replicas(
    status_replicas: i32,
    usage_milli: i64,
    target_milli: i64,
    tolerances: &Tolerances,
) -> (i32, i64) {
    let target = target_milli.max(1) as f64;
    let usage = usage_milli as f64;
    let mut replicas = status_replicas;
    if status_replicas == 0 || !tolerances.within(usage / (target * f64::from(status_replicas))) {
        replicas = ceil_replicas(usage / target);
    }
    let average = if status_replicas == 0 {
        usage_milli
    } else {
        (usage / f64::from(status_replicas)).ceil() as i64
    };
    (replicas, average)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn now() -> jiff::Timestamp {
        "2026-11-30T12:00:00Z".parse().unwrap()
    }

    /// A running pod, ready since long ago, with a request of `request` milli.
    fn pod(name: &str, request: i64) -> PodInfo {
        let long_ago = now() - jiff::SignedDuration::from_hours(1);
        PodInfo {
            name: name.into(),
            phase: "Running".into(),
            deleting: false,
            ready: Some((Ready::True, long_ago)),
            start_time: Some(long_ago),
            request_milli: Ok(request),
        }
    }

    fn usage(values: &[(&str, i64)]) -> BTreeMap<String, PodMetric> {
        values
            .iter()
            .map(|(n, v)| {
                (
                    n.to_string(),
                    PodMetric {
                        value_milli: *v,
                        timestamp: now(),
                        window: Duration::from_secs(30),
                    },
                )
            })
            .collect()
    }

    fn calc(
        current: i32,
        target: i32,
        pods: &[PodInfo],
        metrics: &[(&str, i64)],
    ) -> Result<Proposal, String> {
        utilization_replicas(
            current,
            target,
            "cpu",
            pods,
            &usage(metrics),
            now(),
            &Settings::default(),
        )
    }

    #[test]
    fn scale_up_and_down_by_the_utilization_ratio() {
        let pods = [pod("a", 1000), pod("b", 1000), pod("c", 1000)];
        // 50 % against 30 %: ceil(50/30 × 3) = 5 (upstream TestReplicaCalcScaleUp).
        let up = calc(3, 30, &pods, &[("a", 300), ("b", 500), ("c", 700)]).unwrap();
        assert_eq!(
            (up.replicas, up.utilization, up.average_milli),
            (5, Some(50), 500)
        );
        assert_eq!(up.pods.ready, 3);
        let five: Vec<PodInfo> = ["a", "b", "c", "d", "e"].iter().map(|n| pod(n, 1000)).collect();
        // 28 % against 50 %: ceil(0.56 × 5) = 3 (TestReplicaCalcScaleDown).
        let down = calc(
            5,
            50,
            &five,
            &[("a", 100), ("b", 300), ("c", 500), ("d", 250), ("e", 250)],
        )
        .unwrap();
        assert_eq!((down.replicas, down.utilization), (3, Some(28)));
    }

    #[test]
    fn within_the_tolerance_nothing_changes() {
        let pods = [pod("a", 1000), pod("b", 1000), pod("c", 1000)];
        // 105 % of the target: inside 10 %.
        assert_eq!(
            calc(3, 100, &pods, &[("a", 1050), ("b", 1050), ("c", 1050)])
                .unwrap()
                .replicas,
            3
        );
        // Exactly 110 %: "within" too.
        assert_eq!(
            calc(3, 100, &pods, &[("a", 1100), ("b", 1100), ("c", 1100)])
                .unwrap()
                .replicas,
            3
        );
        assert_eq!(
            calc(3, 100, &pods, &[("a", 1200), ("b", 1200), ("c", 1200)])
                .unwrap()
                .replicas,
            4
        );
    }

    #[test]
    fn missing_pods_count_at_their_request_or_the_target_when_scaling_down() {
        let pods = [pod("a", 1000), pod("b", 1000), pod("c", 1000)];
        // 100 % against 300 %: the missing pod counts at 300 % of its request; then 166 % / 300 % over 3.
        let p = calc(3, 300, &pods, &[("a", 1000), ("b", 1000)]).unwrap();
        assert_eq!(
            (p.replicas, p.utilization),
            (2, Some(100)),
            "the status keeps the original utilization"
        );
        // Scaling up, the missing pod counts as idle: 200 % → with it 133 % against 50 %: ceil(2.66 × 3).
        assert_eq!(
            calc(3, 50, &pods, &[("a", 2000), ("b", 2000)]).unwrap().replicas,
            8
        );
        // Rebalancing that flips the direction keeps the count.
        assert_eq!(
            calc(3, 90, &pods, &[("a", 1200), ("b", 1000)]).unwrap().replicas,
            3
        );
    }

    #[test]
    fn unready_and_ignored_pods_on_the_way_up() {
        let mut pending = pod("c", 1000);
        pending.phase = "Pending".into();
        let mut failed = pod("d", 1000);
        failed.phase = "Failed".into();
        let pods = [pod("a", 1000), pod("b", 1000), pending, failed];
        // 150 % against 50 % with an unready pod: it counts as idle, 100 %: ceil(2 × 3) = 6.
        assert_eq!(
            calc(
                4,
                50,
                &pods,
                &[("a", 1500), ("b", 1500), ("c", 1500), ("d", 1500)]
            )
            .unwrap()
            .replicas,
            6
        );
        // A CPU pod that became ready after its metric's window started is still unready.
        let mut fresh = pod("e", 1000);
        fresh.start_time = Some(now() - jiff::SignedDuration::from_secs(60));
        fresh.ready = Some((Ready::True, now() - jiff::SignedDuration::from_secs(10)));
        let pods = [pod("a", 1000), fresh];
        // The ready pod at 200 %, the fresh one at zero when scaling up: 100 %, inside the tolerance.
        let p = calc(2, 100, &pods, &[("a", 2000), ("e", 2000)]).unwrap();
        assert_eq!((p.replicas, p.utilization), (2, Some(200)), "{p:?}");
        assert_eq!(p.pods.unready.iter().collect::<Vec<_>>(), ["e"]);
    }

    #[test]
    fn errors_say_what_is_missing() {
        assert!(
            calc(1, 50, &[pod("a", 1000)], &[])
                .unwrap_err()
                .contains("no metrics returned")
        );
        assert!(
            calc(1, 50, &[], &[("a", 1)])
                .unwrap_err()
                .contains("no pods returned by selector")
        );
        let mut no_request = pod("a", 0);
        no_request.request_milli = Err("web".into());
        assert!(
            calc(1, 50, &[no_request], &[("a", 1)])
                .unwrap_err()
                .contains("missing request for cpu in container web of Pod a")
        );
    }

    #[test]
    fn average_value_targets_for_pods_metrics() {
        let pods = [pod("a", 0), pod("b", 0), pod("c", 0)];
        let plain = |current, target, pods: &[PodInfo], values: &[(&str, i64)]| {
            average_value_replicas(
                current,
                target,
                "",
                pods,
                &usage(values),
                now(),
                &Settings::default(),
            )
        };
        // TestReplicaCalcScaleUpCM: average 20 against 15 → ceil(1.33 × 3) = 4.
        let up = plain(3, 15000, &pods, &[("a", 20000), ("b", 10000), ("c", 30000)]).unwrap();
        assert_eq!((up.replicas, up.average_milli, up.utilization), (4, 20000, None));
        // TestReplicaCalcScaleDownCM: 12 against 20 over five pods → 3.
        let five: Vec<PodInfo> = ["a", "b", "c", "d", "e"].iter().map(|n| pod(n, 0)).collect();
        let values: Vec<(&str, i64)> = ["a", "b", "c", "d", "e"].iter().map(|n| (*n, 12000)).collect();
        assert_eq!(plain(5, 20000, &five, &values).unwrap().replicas, 3);
        // A missing pod counts at the target on the way down: (10+10+20)/3 = 13.3 against 20 → 2.
        let down = plain(3, 20000, &pods, &[("a", 10000), ("b", 10000)]).unwrap();
        assert_eq!((down.replicas, down.average_milli), (2, 10000));
        assert_eq!(down.pods.missing.iter().collect::<Vec<_>>(), ["c"]);
        // Pods metrics do not look at readiness: a pod ready a moment ago counts.
        let mut fresh = pod("c", 0);
        fresh.ready = Some((Ready::True, now()));
        let counted = plain(
            3,
            15000,
            &[pod("a", 0), pod("b", 0), fresh],
            &[("a", 20000), ("b", 10000), ("c", 30000)],
        );
        assert_eq!(counted.unwrap().pods.ready, 3);
    }

    #[test]
    fn object_and_external_values() {
        let tol = Settings::default().tolerances;
        // TestReplicaCalcScaleUpCMObject: 20 against 15 with 3 ready pods → 4.
        assert_eq!(value_replicas(3, 20000, 15000, || Ok(3), &tol), Ok(4));
        // TestReplicaCalcScaleUpCMExternal: 8.6 against 4.4 with one ready pod → 2.
        assert_eq!(value_replicas(1, 8600, 4400, || Ok(1), &tol), Ok(2));
        // TestReplicaCalcScaleDownCMExternal: 8.6 against 14.334 over 5 → 3.
        assert_eq!(value_replicas(5, 8600, 14334, || Ok(5), &tol), Ok(3));
        // TestReplicaCalcToleranceCMExternal: within 10 %, the pods are not even counted.
        assert_eq!(
            value_replicas(3, 8600, 8888, || Err("unused".into()), &tol),
            Ok(3)
        );
        // From zero replicas the ratio alone decides.
        assert_eq!(value_replicas(0, 25000, 10000, || Ok(0), &tol), Ok(3));
        assert!(
            value_replicas(3, 50000, 10000, || ready_pods(&[]), &tol)
                .unwrap_err()
                .starts_with("unable to calculate ready pods: no pods returned by selector")
        );
        // TestReplicaCalcScaleUpCMPerPodObject: 20 over a per-pod target of 5 → 4; average ceil(20/3).
        assert_eq!(per_pod_replicas(3, 20000, 5000, &tol), (4, 6667));
        // TestReplicaCalcScaleUpPerPodCMExternal: 8.6 over 2.15 → 4; average 2.867.
        assert_eq!(per_pod_replicas(3, 8600, 2150, &tol), (4, 2867));
        // Within the tolerance per pod: keep the status replicas.
        assert_eq!(per_pod_replicas(4, 21000, 5000, &tol), (4, 5250));
        let mut pending = pod("b", 0);
        pending.phase = "Pending".into();
        let mut not_ready = pod("c", 0);
        not_ready.ready = Some((Ready::False, now()));
        assert_eq!(ready_pods(&[pod("a", 0), pending, not_ready]), Ok(1));
    }
}
