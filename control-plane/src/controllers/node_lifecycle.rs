//! The node lifecycle controller (k/k `pkg/controller/nodelifecycle`): a node whose kubelet stopped
//! renewing its lease (and posting status) for the grace period (`--node-monitor-grace-period`, 40 s)
//! has its conditions set to Unknown and is tainted `node.kubernetes.io/unreachable` (NoSchedule and
//! NoExecute); a node whose kubelet reports NotReady is tainted `node.kubernetes.io/not-ready`; the taints
//! go when the node is Ready again. It records `RegisteredNode` for every node it comes to know and
//! `NodeNotReady` when it gives up on one.
//!
//! It looks at every node every 5 s (`--node-monitor-period`) with two list calls: at one machine's
//! scale that is less than keeping watches in step.

use std::collections::HashSet;
use std::time::Duration;

use eventer::Recorder;
use jiff::Timestamp;
use k8s_openapi::api::coordination::v1::Lease;
use k8s_openapi::api::core::v1::{Node, ObjectReference, Taint};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use kube::api::{Api, ListParams, Patch, PatchParams};
use serde_json::json;
use tokio_util::sync::CancellationToken;

use super::api_code;
use crate::node::LEASE_NAMESPACE;
use crate::telemetry::{ControllerMetrics, ReconcileFinished};

/// The event source of the controller's events (kube-controller-manager's).
pub const COMPONENT: &str = "node-controller";
pub const TAINT_UNREACHABLE: &str = "node.kubernetes.io/unreachable";
pub const TAINT_NOT_READY: &str = "node.kubernetes.io/not-ready";
const MONITOR_PERIOD: Duration = Duration::from_secs(5);

/// The controller's settings.
#[derive(Clone, Debug)]
pub struct NodeLifecycleConfig {
    /// How long a node may go without a heartbeat before it is considered unreachable. Default 40 s.
    pub grace_period: Duration,
}

impl Default for NodeLifecycleConfig {
    fn default() -> Self {
        NodeLifecycleConfig {
            grace_period: Duration::from_secs(40),
        }
    }
}

pub async fn run(
    config: NodeLifecycleConfig,
    client: kube::Client,
    recorder: Recorder,
    metrics: ControllerMetrics,
    shutdown: CancellationToken,
) {
    let mut known = HashSet::new();
    let mut tick = tokio::time::interval(MONITOR_PERIOD);
    loop {
        tokio::select! {
            _ = shutdown.cancelled() => return,
            _ = tick.tick() => {}
        }
        let started = std::time::Instant::now();
        let result = monitor(&config, &client, &recorder, &mut known).await;
        let error = result.as_ref().err().map(|e| e as &dyn std::fmt::Display);
        ReconcileFinished {
            controller: "nodelifecycle",
            elapsed: started.elapsed(),
            error,
        }
        .emit(&metrics);
        if let Err(e) = result {
            tracing::warn!(error = %e, "node monitoring pass failed");
        }
    }
}

async fn monitor(
    config: &NodeLifecycleConfig,
    client: &kube::Client,
    recorder: &Recorder,
    known: &mut HashSet<String>,
) -> Result<(), kube::Error> {
    let nodes: Api<Node> = Api::all(client.clone());
    let leases: Api<Lease> = Api::namespaced(client.clone(), LEASE_NAMESPACE);
    let leases = leases.list(&ListParams::default()).await?.items;
    let now = Timestamp::now();
    let listed = nodes.list(&ListParams::default()).await?.items;
    known.retain(|name| {
        listed
            .iter()
            .any(|n| n.metadata.name.as_deref() == Some(name.as_str()))
    });
    for node in listed {
        let name = node.metadata.name.clone().unwrap_or_default();
        let reference = reference(&node);
        if known.insert(name.clone()) {
            recorder.normal(
                &reference,
                "RegisteredNode",
                format!("Node {name} event: Registered Node {name} in Controller"),
            );
        }
        let lease = leases
            .iter()
            .find(|l| l.metadata.name.as_deref() == Some(name.as_str()));
        let result = match assess(&node, lease, now, config.grace_period) {
            Health::Lost => match mark_unknown(&nodes, &node, now).await {
                Ok(marked) => {
                    recorder.normal(
                        &reference,
                        "NodeNotReady",
                        format!("Node {name} status is now: NodeNotReady"),
                    );
                    set_taints(&nodes, &marked, Health::Unreachable, now).await
                }
                Err(e) => Err(e),
            },
            health => set_taints(&nodes, &node, health, now).await,
        };
        match result {
            // Changed or gone meanwhile: the next pass sees it as it is.
            Err(e) if matches!(api_code(&e), Some(404 | 409)) => {}
            other => other?,
        }
    }
    Ok(())
}

/// What the controller makes of a node.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Health {
    /// Heard from within the grace period, and its kubelet says it is ready.
    Ready,
    /// Heard from, but not ready.
    NotReady,
    /// Not heard from for the grace period, already marked Unknown.
    Unreachable,
    /// Not heard from for the grace period, not yet marked.
    Lost,
}

fn ready_status(node: &Node) -> Option<&str> {
    let conditions = node.status.as_ref()?.conditions.as_ref()?;
    conditions
        .iter()
        .find(|c| c.type_ == "Ready")
        .map(|c| c.status.as_str())
}

/// The newest sign of life: the lease's renewal, or the Ready condition's heartbeat.
fn last_heard(node: &Node, lease: Option<&Lease>) -> Option<Timestamp> {
    let renewed = lease
        .and_then(|l| l.spec.as_ref()?.renew_time.as_ref())
        .map(|t| t.0);
    let heartbeat = node
        .status
        .as_ref()
        .and_then(|s| s.conditions.as_ref())
        .and_then(|c| c.iter().find(|c| c.type_ == "Ready"))
        .and_then(|c| c.last_heartbeat_time.as_ref())
        .map(|t| t.0);
    let created = node.metadata.creation_timestamp.as_ref().map(|t| t.0);
    renewed.max(heartbeat).or(created)
}

fn assess(node: &Node, lease: Option<&Lease>, now: Timestamp, grace: Duration) -> Health {
    let grace = jiff::SignedDuration::try_from(grace).unwrap_or(jiff::SignedDuration::MAX);
    let stale = last_heard(node, lease).is_none_or(|heard| now.duration_since(heard) > grace);
    match (stale, ready_status(node)) {
        (true, Some("Unknown")) => Health::Unreachable,
        (true, _) => Health::Lost,
        (false, Some("True")) => Health::Ready,
        (false, _) => Health::NotReady,
    }
}

/// Sets every condition the kubelet posts to Unknown, as upstream does when it stops hearing from it;
/// returns the node as written.
async fn mark_unknown(nodes: &Api<Node>, node: &Node, now: Timestamp) -> Result<Node, kube::Error> {
    let mut conditions = node
        .status
        .as_ref()
        .and_then(|s| s.conditions.clone())
        .unwrap_or_default();
    if !conditions.iter().any(|c| c.type_ == "Ready") {
        conditions.push(k8s_openapi::api::core::v1::NodeCondition {
            type_: "Ready".into(),
            ..Default::default()
        });
    }
    for condition in &mut conditions {
        condition.status = "Unknown".into();
        condition.reason = Some("NodeStatusUnknown".into());
        condition.message = Some("Kubelet stopped posting node status.".into());
        condition.last_transition_time = Some(Time(now));
    }
    let patch = json!({
        "metadata": {"resourceVersion": node.metadata.resource_version},
        "status": {"conditions": conditions},
    });
    let name = node.metadata.name.as_deref().unwrap_or_default();
    nodes
        .patch_status(name, &PatchParams::default(), &Patch::Merge(patch))
        .await
}

/// The taints the controller wants on a node in `health`, with the node's other taints kept.
fn wanted_taints(current: &[Taint], health: Health, now: Timestamp) -> Vec<Taint> {
    let managed = |t: &Taint| t.key == TAINT_UNREACHABLE || t.key == TAINT_NOT_READY;
    let mut taints: Vec<Taint> = current.iter().filter(|t| !managed(t)).cloned().collect();
    let key = match health {
        Health::Ready => return taints,
        Health::NotReady => TAINT_NOT_READY,
        Health::Unreachable | Health::Lost => TAINT_UNREACHABLE,
    };
    for effect in ["NoSchedule", "NoExecute"] {
        // An existing taint keeps its timeAdded.
        let existing = current
            .iter()
            .find(|t| t.key == key && t.effect == effect)
            .cloned();
        taints.push(existing.unwrap_or_else(|| Taint {
            key: key.into(),
            effect: effect.into(),
            time_added: (effect == "NoExecute").then_some(Time(now)),
            value: None,
        }));
    }
    taints
}

async fn set_taints(
    nodes: &Api<Node>,
    node: &Node,
    health: Health,
    now: Timestamp,
) -> Result<(), kube::Error> {
    let current = node
        .spec
        .as_ref()
        .and_then(|s| s.taints.clone())
        .unwrap_or_default();
    let wanted = wanted_taints(&current, health, now);
    if wanted == current {
        return Ok(());
    }
    let taints = if wanted.is_empty() {
        serde_json::Value::Null
    } else {
        json!(wanted)
    };
    let patch =
        json!({"metadata": {"resourceVersion": node.metadata.resource_version}, "spec": {"taints": taints}});
    let name = node.metadata.name.as_deref().unwrap_or_default();
    nodes
        .patch(name, &PatchParams::default(), &Patch::Merge(patch))
        .await
        .map(|_| ())
}

/// The controller's reference to a node in events.
fn reference(node: &Node) -> ObjectReference {
    ObjectReference {
        api_version: Some("v1".into()),
        kind: Some("Node".into()),
        name: node.metadata.name.clone(),
        uid: node.metadata.uid.clone(),
        ..ObjectReference::default()
    }
}

#[cfg(test)]
mod tests {
    use k8s_openapi::api::coordination::v1::LeaseSpec;
    use k8s_openapi::api::core::v1::{NodeCondition, NodeStatus};
    use k8s_openapi::apimachinery::pkg::apis::meta::v1::MicroTime;

    use super::*;

    fn at(seconds: i64) -> Timestamp {
        Timestamp::from_second(1_800_000_000 + seconds).unwrap()
    }

    fn node(ready: &str, heartbeat: i64) -> Node {
        Node {
            status: Some(NodeStatus {
                conditions: Some(vec![NodeCondition {
                    type_: "Ready".into(),
                    status: ready.into(),
                    last_heartbeat_time: Some(Time(at(heartbeat))),
                    ..NodeCondition::default()
                }]),
                ..NodeStatus::default()
            }),
            ..Node::default()
        }
    }

    fn lease(renewed: i64) -> Lease {
        Lease {
            spec: Some(LeaseSpec {
                renew_time: Some(MicroTime(at(renewed))),
                ..LeaseSpec::default()
            }),
            ..Lease::default()
        }
    }

    #[test]
    fn a_node_is_lost_after_the_grace_period_without_a_lease_renewal_or_heartbeat() {
        let grace = Duration::from_secs(40);
        // The status heartbeat is old (the kubelet writes it every 5 minutes); the lease is what counts.
        assert_eq!(
            assess(&node("True", 0), Some(&lease(270)), at(300), grace),
            Health::Ready
        );
        assert_eq!(
            assess(&node("True", 0), Some(&lease(260)), at(300), grace),
            Health::Ready,
            "exactly 40 s is in"
        );
        assert_eq!(
            assess(&node("True", 0), Some(&lease(259)), at(300), grace),
            Health::Lost
        );
        assert_eq!(
            assess(&node("True", 290), None, at(300), grace),
            Health::Ready,
            "no lease: the heartbeat"
        );
        assert_eq!(
            assess(&node("Unknown", 0), Some(&lease(0)), at(300), grace),
            Health::Unreachable
        );
        assert_eq!(
            assess(&node("False", 0), Some(&lease(299)), at(300), grace),
            Health::NotReady
        );
        assert_eq!(
            assess(&Node::default(), None, at(300), grace),
            Health::Lost,
            "never heard from"
        );
    }

    #[test]
    fn taints_follow_health_and_leave_other_taints_alone() {
        let own = Taint {
            key: "dedicated".into(),
            effect: "NoSchedule".into(),
            ..Taint::default()
        };
        let lost = wanted_taints(std::slice::from_ref(&own), Health::Lost, at(10));
        let keys: Vec<(&str, &str)> = lost.iter().map(|t| (t.key.as_str(), t.effect.as_str())).collect();
        assert_eq!(
            keys,
            [
                ("dedicated", "NoSchedule"),
                (TAINT_UNREACHABLE, "NoSchedule"),
                (TAINT_UNREACHABLE, "NoExecute")
            ]
        );
        assert_eq!(lost[2].time_added, Some(Time(at(10))));
        // Still unreachable later: the taints, and when they were added, stay as they were.
        assert_eq!(wanted_taints(&lost, Health::Unreachable, at(99)), lost);
        let not_ready = wanted_taints(&lost, Health::NotReady, at(120));
        assert!(not_ready.iter().all(|t| t.key != TAINT_UNREACHABLE));
        assert_eq!(not_ready.iter().filter(|t| t.key == TAINT_NOT_READY).count(), 2);
        assert_eq!(wanted_taints(&not_ready, Health::Ready, at(130)), [own]);
    }
}
