//! The HPA's replica calculation for a Resource metric with a `Utilization` target (k/k
//! `pkg/controller/podautoscaler/replica_calculator.go` `GetResourceReplicas`, `groupPods`,
//! `metrics/utilization.go`; `spec/hpa.md` §1.2, §1.3, §1.7): pods grouped into ready, unready,
//! missing and ignored; utilization as a truncated integer percentage; missing pods assumed at their
//! request (or the target above 100 %) when scaling down and at zero when scaling up; unready pods at
//! zero when scaling up; no change within the tolerance or when rebalancing flips the direction.
//!
//! The controller that uses it (status, conditions, behavior, events, the `/scale` write) comes with
//! the rest of the HPA work.

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

/// A pod as the calculation sees it.
#[derive(Clone, Debug)]
pub struct PodInfo {
    pub name: String,
    /// `Pending`, `Running`, `Succeeded`, `Failed`.
    pub phase: String,
    pub deleting: bool,
    /// The `Ready` condition: its status and when it last changed.
    pub ready: Option<(bool, jiff::Timestamp)>,
    pub start_time: Option<jiff::Timestamp>,
    /// The sum of its containers' requests of the resource, in milli-units; `None` when one lacks it.
    pub request_milli: Option<i64>,
}

/// A pod's usage from the metrics API.
#[derive(Clone, Copy, Debug)]
pub struct PodMetric {
    pub value_milli: i64,
    pub timestamp: jiff::Timestamp,
    pub window: Duration,
}

/// The controller's settings for the calculation (upstream's flags).
#[derive(Clone, Copy, Debug)]
pub struct Settings {
    pub tolerance: f64,
    pub cpu_initialization_period: Duration,
    pub initial_readiness_delay: Duration,
}

impl Default for Settings {
    fn default() -> Settings {
        Settings {
            tolerance: 0.1,
            cpu_initialization_period: Duration::from_secs(300),
            initial_readiness_delay: Duration::from_secs(30),
        }
    }
}

/// The proposal: replicas, and the utilization and raw average reported in the status (the original
/// ones, before rebalancing).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Proposal {
    pub replicas: i32,
    pub utilization: i32,
    pub raw_average_milli: i64,
}

struct Groups {
    ready: usize,
    unready: BTreeSet<String>,
    missing: BTreeSet<String>,
    ignored: BTreeSet<String>,
}

/// `groupPods` (§1.2).
fn group_pods(
    pods: &[PodInfo],
    metrics: &BTreeMap<String, PodMetric>,
    cpu: bool,
    now: jiff::Timestamp,
    settings: &Settings,
) -> Groups {
    let mut groups = Groups {
        ready: 0,
        unready: BTreeSet::new(),
        missing: BTreeSet::new(),
        ignored: BTreeSet::new(),
    };
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
                (Some((ready, changed)), Some(start)) => {
                    if now < start + settings.cpu_initialization_period {
                        !ready || metric.timestamp < changed + metric.window
                    } else {
                        !ready && start + settings.initial_readiness_delay > changed
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

/// `GetResourceUtilizationRatio`: the truncated utilization percentage of the pods with a request,
/// its ratio to the target, and the raw average usage.
fn utilization_ratio(
    metrics: &BTreeMap<String, PodMetric>,
    requests: &BTreeMap<String, i64>,
    target: i32,
) -> Result<(f64, i32, i64), String> {
    let (mut usage, mut request, mut counted) = (0i64, 0i64, 0i64);
    for (name, metric) in metrics {
        if let Some(r) = requests.get(name) {
            usage += metric.value_milli;
            request += r;
            counted += 1;
        }
    }
    if counted == 0 || request == 0 {
        return Err("no metrics returned matched known pods".into());
    }
    let utilization = (usage * 100 / request) as i32;
    Ok((
        f64::from(utilization) / f64::from(target),
        utilization,
        usage / counted,
    ))
}

/// `GetResourceReplicas` for `resource` (`cpu` applies the readiness rules) and a target utilization
/// in percent.
pub fn resource_replicas(
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
    let mut metrics: BTreeMap<String, PodMetric> = metrics
        .iter()
        .filter(|(name, _)| !groups.ignored.contains(*name) && !groups.unready.contains(*name))
        .map(|(n, m)| (n.clone(), *m))
        .collect();
    if metrics.is_empty() {
        return Err("did not receive metrics for targeted pods (pods might be unready)".into());
    }
    let mut requests = BTreeMap::new();
    for pod in pods {
        match pod.request_milli {
            Some(r) => {
                requests.insert(pod.name.clone(), r);
            }
            None => {
                return Err(format!(
                    "missing request for {resource} in a container of Pod {}",
                    pod.name
                ));
            }
        }
    }
    let (ratio, utilization, raw_average_milli) = utilization_ratio(&metrics, &requests, target_utilization)?;
    let within = |r: f64| (1.0 - settings.tolerance..=1.0 + settings.tolerance).contains(&r);
    let proposal = |replicas: i32| Proposal {
        replicas,
        utilization,
        raw_average_milli,
    };
    let scale_up_with_unready = !groups.unready.is_empty() && ratio > 1.0;
    if !scale_up_with_unready && groups.missing.is_empty() {
        if within(ratio) {
            return Ok(proposal(current));
        }
        return Ok(proposal((ratio * groups.ready as f64).ceil() as i32));
    }
    let at = |value_milli: i64| PodMetric {
        value_milli,
        timestamp: now,
        window: Duration::ZERO,
    };
    for name in &groups.missing {
        let request = requests.get(name).copied().unwrap_or(0);
        let assumed = if ratio < 1.0 {
            request * i64::from(target_utilization.max(100)) / 100
        } else if ratio > 1.0 {
            0
        } else {
            continue;
        };
        metrics.insert(name.clone(), at(assumed));
    }
    if scale_up_with_unready {
        for name in &groups.unready {
            metrics.insert(name.clone(), at(0));
        }
    }
    let (new_ratio, _, _) = utilization_ratio(&metrics, &requests, target_utilization)?;
    if within(new_ratio) || (ratio < 1.0 && new_ratio > 1.0) || (ratio > 1.0 && new_ratio < 1.0) {
        return Ok(proposal(current));
    }
    let replicas = (new_ratio * metrics.len() as f64).ceil() as i32;
    if (new_ratio < 1.0 && replicas > current) || (new_ratio > 1.0 && replicas < current) {
        return Ok(proposal(current));
    }
    Ok(proposal(replicas))
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
            ready: Some((true, long_ago)),
            start_time: Some(long_ago),
            request_milli: Some(request),
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
        resource_replicas(
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
        assert_eq!(
            calc(3, 30, &pods, &[("a", 300), ("b", 500), ("c", 700)]),
            Ok(Proposal {
                replicas: 5,
                utilization: 50,
                raw_average_milli: 500
            })
        );
        let five: Vec<PodInfo> = ["a", "b", "c", "d", "e"].iter().map(|n| pod(n, 1000)).collect();
        // 28 % against 50 %: ceil(0.56 × 5) = 3 (TestReplicaCalcScaleDown).
        let down = calc(
            5,
            50,
            &five,
            &[("a", 100), ("b", 300), ("c", 500), ("d", 250), ("e", 250)],
        )
        .unwrap();
        assert_eq!((down.replicas, down.utilization), (3, 28));
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
            (2, 100),
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
        fresh.ready = Some((true, now() - jiff::SignedDuration::from_secs(10)));
        let pods = [pod("a", 1000), fresh];
        // The ready pod at 200 %, the fresh one at zero when scaling up: 100 %, inside the tolerance.
        let p = calc(2, 100, &pods, &[("a", 2000), ("e", 2000)]).unwrap();
        assert_eq!((p.replicas, p.utilization), (2, 200), "{p:?}");
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
        no_request.request_milli = None;
        assert!(
            calc(1, 50, &[no_request], &[("a", 1)])
                .unwrap_err()
                .contains("missing request for cpu")
        );
    }
}
