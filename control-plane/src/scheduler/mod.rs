//! The scheduler (kube-scheduler's role): binds each pending pod to a node that can take it, through the
//! `pods/binding` subresource, with upstream's events (`Scheduled`, `FailedScheduling`, through the
//! events.k8s.io recorder with action `Binding` / `Scheduling`) and `PodScheduled` condition.
//!
//! It keeps caches of pods and nodes (one watch each) and makes a pass over the pending pods when either
//! changes. A pod that fits nowhere waits: it is tried again when the cluster changes in a way that
//! could help (a node changed, a pod went away) or after a backoff (1 s doubling to 10 s, as upstream's
//! podInitialBackoff / podMaxBackoff). Which node: the filters in `fit`, then the node with the fewest
//! pods of the same controller, then the least requested cpu, then the name.

pub mod fit;

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use eventer::{EventType, EventsRecorder};
use k8s_openapi::api::core::v1::{Node, Pod};
use kube::api::{Api, Patch, PatchParams, PostParams};
use kube::runtime::reflector::Store;
use kube::runtime::watcher;
use kube::{Resource, ResourceExt};
use serde_json::json;
use tokio::sync::Notify;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use crate::controllers::api_code;
use crate::telemetry::{ControllerMetrics, SchedulingAttempted};
use fit::Requests;

/// The scheduler's name (pods name it in `spec.schedulerName`) and event reporting controller.
pub const NAME: &str = "default-scheduler";
const BACKOFF_FIRST: Duration = Duration::from_secs(1);
const BACKOFF_MAX: Duration = Duration::from_secs(10);
/// A pass after a burst of changes waits this long for the rest of the burst.
const DEBOUNCE: Duration = Duration::from_millis(20);

pub async fn run(
    client: kube::Client,
    recorder: EventsRecorder,
    metrics: ControllerMetrics,
    shutdown: CancellationToken,
) {
    let changed = Arc::new(Notify::new());
    // Bumped by changes that can make an unschedulable pod schedulable.
    let cluster = Arc::new(AtomicU64::new(0));
    let pods = cache::<Pod>(
        &client,
        changed.clone(),
        cluster.clone(),
        &shutdown,
        |event| match event {
            watcher::Event::Delete(_) => true,
            watcher::Event::Apply(pod) => pod.metadata.deletion_timestamp.is_some(),
            _ => false,
        },
    );
    let nodes = cache::<Node>(&client, changed.clone(), cluster.clone(), &shutdown, |_| true);
    for store in [
        pods.wait_until_ready().await.is_ok(),
        nodes.wait_until_ready().await.is_ok(),
    ] {
        if !store {
            return;
        }
    }
    let mut scheduler = Scheduler {
        metrics,
        client,
        recorder,
        pods,
        nodes,
        cluster,
        waiting: HashMap::new(),
    };
    tracing::info!("scheduler started");
    loop {
        let next = scheduler.pass().await;
        let wake = tokio::time::sleep_until(next.unwrap_or_else(|| Instant::now() + BACKOFF_MAX));
        tokio::select! {
            _ = shutdown.cancelled() => return,
            _ = changed.notified() => tokio::time::sleep(DEBOUNCE).await,
            _ = wake => {}
        }
    }
}

/// A reflector of every `K`, ringing `changed` on every change and bumping `cluster` on those `helps`
/// says can make room.
fn cache<K>(
    client: &kube::Client,
    changed: Arc<Notify>,
    cluster: Arc<AtomicU64>,
    shutdown: &CancellationToken,
    helps: fn(&watcher::Event<K>) -> bool,
) -> Store<K>
where
    K: crate::controllers::Watched,
{
    crate::controllers::cache(
        client,
        watcher::Config::default(),
        shutdown,
        "scheduler",
        move |event| {
            if helps(event) {
                cluster.fetch_add(1, Ordering::Relaxed);
            }
            changed.notify_one();
        },
    )
}

/// A pod that fit nowhere: when to try it again.
struct Waiting {
    failures: u32,
    retry_at: Instant,
    /// The cluster's change count when it last failed: any later change is worth a try.
    cluster: u64,
}

struct Scheduler {
    metrics: ControllerMetrics,
    client: kube::Client,
    recorder: EventsRecorder,
    pods: Store<Pod>,
    nodes: Store<Node>,
    cluster: Arc<AtomicU64>,
    waiting: HashMap<String, Waiting>,
}

impl Scheduler {
    /// Schedules what can be; returns when a waiting pod is next due.
    async fn pass(&mut self) -> Option<Instant> {
        let nodes = self.nodes.state();
        let all = self.pods.state();
        let mut used: HashMap<String, Requests> = HashMap::new();
        let mut by_owner: HashMap<(String, String), usize> = HashMap::new();
        for pod in all.iter().filter(|p| counts_on_node(p)) {
            let node = pod
                .spec
                .as_ref()
                .and_then(|s| s.node_name.clone())
                .unwrap_or_default();
            *used.entry(node.clone()).or_default() += fit::pod_requests(pod);
            if let Some(owner) = controller_uid(pod) {
                *by_owner.entry((node, owner)).or_default() += 1;
            }
        }
        let mut pending: Vec<Arc<Pod>> = all.iter().filter(|p| is_pending(p)).cloned().collect();
        pending.sort_by_key(|p| p.metadata.creation_timestamp.as_ref().map(|t| t.0));
        let present: std::collections::HashSet<String> = pending.iter().filter_map(|p| p.uid()).collect();
        self.waiting.retain(|uid, _| present.contains(uid));
        let cluster = self.cluster.load(Ordering::Relaxed);
        let now = Instant::now();
        for pod in pending {
            let uid = pod.uid().unwrap_or_default();
            if let Some(waiting) = self.waiting.get(&uid)
                && waiting.cluster == cluster
                && waiting.retry_at > now
            {
                continue;
            }
            let started = std::time::Instant::now();
            let span = tracing::info_span!("schedule", pod = %pod.name_any());
            let best = span.in_scope(|| choose(&pod, &nodes, &used, &by_owner));
            match best {
                Ok(name) => {
                    let bound = tracing::Instrument::instrument(self.bind(&pod, &name), span).await;
                    let result = if bound { "scheduled" } else { "error" };
                    SchedulingAttempted {
                        result,
                        pod: &pod.name_any(),
                        elapsed: started.elapsed(),
                    }
                    .emit(&self.metrics);
                    if bound {
                        self.waiting.remove(&uid);
                        *used.entry(name.clone()).or_default() += fit::pod_requests(&pod);
                        if let Some(owner) = controller_uid(&pod) {
                            *by_owner.entry((name, owner)).or_default() += 1;
                        }
                    }
                }
                Err(rejected) => {
                    let elapsed = started.elapsed();
                    SchedulingAttempted {
                        result: "unschedulable",
                        pod: &pod.name_any(),
                        elapsed,
                    }
                    .emit(&self.metrics);
                    let message = fit::fit_error(nodes.len(), &rejected);
                    self.unschedulable(&pod, &message).await;
                    let failures = self.waiting.get(&uid).map_or(0, |w| w.failures) + 1;
                    let backoff = BACKOFF_FIRST
                        .saturating_mul(1 << (failures - 1).min(8))
                        .min(BACKOFF_MAX);
                    self.waiting.insert(
                        uid,
                        Waiting {
                            failures,
                            retry_at: now + backoff,
                            cluster,
                        },
                    );
                }
            }
        }
        self.waiting.values().map(|w| w.retry_at).min()
    }

    async fn bind(&self, pod: &Pod, node: &str) -> bool {
        let namespace = pod.namespace().unwrap_or_default();
        let name = pod.name_any();
        let api: Api<Pod> = Api::namespaced(self.client.clone(), &namespace);
        let binding = json!({
            "apiVersion": "v1",
            "kind": "Binding",
            "metadata": {"name": name, "namespace": namespace},
            "target": {"apiVersion": "v1", "kind": "Node", "name": node},
        });
        match api
            .create_subresource::<_, serde_json::Value>("binding", &name, &PostParams::default(), &binding)
            .await
        {
            Ok(_) => {
                let reference = pod.object_ref(&());
                self.recorder.eventf(
                    &reference,
                    None,
                    EventType::Normal,
                    "Scheduled",
                    "Binding",
                    format!("Successfully assigned {namespace}/{name} to {node}"),
                );
                tracing::debug!(pod = %name, namespace = %namespace, node, "pod scheduled");
                true
            }
            // Bound or deleted meanwhile: the caches bring the news.
            Err(e) if matches!(api_code(&e), Some(404 | 409)) => false,
            Err(e) => {
                tracing::warn!(pod = %name, namespace = %namespace, error = %e, "binding a pod failed");
                false
            }
        }
    }

    /// Says why a pod cannot be scheduled: a `FailedScheduling` event and the `PodScheduled` condition.
    async fn unschedulable(&self, pod: &Pod, message: &str) {
        let reference = pod.object_ref(&());
        self.recorder.eventf(
            &reference,
            None,
            EventType::Warning,
            "FailedScheduling",
            "Scheduling",
            message,
        );
        let current = pod
            .status
            .as_ref()
            .and_then(|s| s.conditions.as_ref())
            .and_then(|c| c.iter().find(|c| c.type_ == "PodScheduled"));
        if current.is_some_and(|c| c.status == "False" && c.message.as_deref() == Some(message)) {
            return;
        }
        // Merge patches replace lists: keep the other conditions.
        let mut conditions: Vec<_> = pod
            .status
            .as_ref()
            .and_then(|s| s.conditions.clone())
            .unwrap_or_default()
            .into_iter()
            .filter(|c| c.type_ != "PodScheduled")
            .collect();
        conditions.push(k8s_openapi::api::core::v1::PodCondition {
            type_: "PodScheduled".into(),
            status: "False".into(),
            reason: Some("Unschedulable".into()),
            message: Some(message.into()),
            last_transition_time: Some(k8s_openapi::apimachinery::pkg::apis::meta::v1::Time(
                jiff::Timestamp::now(),
            )),
            ..Default::default()
        });
        let api: Api<Pod> = Api::namespaced(self.client.clone(), &pod.namespace().unwrap_or_default());
        let patch = json!({"status": {"conditions": conditions}});
        if let Err(e) = api
            .patch_status(&pod.name_any(), &PatchParams::default(), &Patch::Merge(patch))
            .await
            && !matches!(api_code(&e), Some(404 | 409))
        {
            tracing::warn!(pod = %pod.name_any(), error = %e, "updating PodScheduled failed");
        }
    }
}

/// The node for `pod`: among those it fits, the one with the fewest pods of its controller, then the
/// least requested cpu, then the first name; or, when none fits, every node's reasons.
fn choose(
    pod: &Pod,
    nodes: &[Arc<Node>],
    used: &HashMap<String, Requests>,
    by_owner: &HashMap<(String, String), usize>,
) -> Result<String, Vec<Vec<fit::Reject>>> {
    let mut rejected = Vec::new();
    let mut best: Option<(usize, i128, String)> = None;
    let owner = controller_uid(pod);
    for node in nodes {
        let name = node.name_any();
        let node_used = used.get(&name).copied().unwrap_or_default();
        let reasons = fit::rejects(pod, node, node_used);
        if !reasons.is_empty() {
            rejected.push(reasons);
            continue;
        }
        let siblings = owner.as_ref().map_or(0, |o| {
            by_owner.get(&(name.clone(), o.clone())).copied().unwrap_or(0)
        });
        let load = node_used.milli_cpu * 1000 / fit::allocatable(node).milli_cpu.max(1);
        let rank = (siblings, load, name);
        if best.as_ref().is_none_or(|b| rank < *b) {
            best = Some(rank);
        }
    }
    best.map(|(_, _, name)| name).ok_or(rejected)
}

/// A pod for this scheduler that has no node yet.
fn is_pending(pod: &Pod) -> bool {
    let spec = pod.spec.as_ref();
    let unbound = spec
        .and_then(|s| s.node_name.as_deref())
        .is_none_or(str::is_empty);
    let ours = spec
        .and_then(|s| s.scheduler_name.as_deref())
        .is_none_or(|n| n.is_empty() || n == NAME);
    let finished = matches!(
        pod.status.as_ref().and_then(|s| s.phase.as_deref()),
        Some("Succeeded" | "Failed")
    );
    unbound && ours && !finished && pod.metadata.deletion_timestamp.is_none()
}

/// A bound pod that still takes its node's resources.
fn counts_on_node(pod: &Pod) -> bool {
    let bound = pod
        .spec
        .as_ref()
        .and_then(|s| s.node_name.as_deref())
        .is_some_and(|n| !n.is_empty());
    let finished = matches!(
        pod.status.as_ref().and_then(|s| s.phase.as_deref()),
        Some("Succeeded" | "Failed")
    );
    bound && !finished
}

fn controller_uid(pod: &Pod) -> Option<String> {
    pod.metadata
        .owner_references
        .iter()
        .flatten()
        .find(|o| o.controller == Some(true))
        .map(|o| o.uid.clone())
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use k8s_openapi::api::core::v1::NodeStatus;
    use k8s_openapi::apimachinery::pkg::api::resource::Quantity;
    use k8s_openapi::apimachinery::pkg::apis::meta::v1::{ObjectMeta, OwnerReference};

    use super::*;

    fn node(name: &str) -> Arc<Node> {
        Arc::new(Node {
            metadata: ObjectMeta {
                name: Some(name.into()),
                ..ObjectMeta::default()
            },
            status: Some(NodeStatus {
                allocatable: Some(BTreeMap::from([
                    ("cpu".into(), Quantity("4".into())),
                    ("memory".into(), Quantity("8Gi".into())),
                    ("pods".into(), Quantity("110".into())),
                ])),
                ..NodeStatus::default()
            }),
            ..Node::default()
        })
    }

    fn replica() -> Pod {
        Pod {
            metadata: ObjectMeta {
                owner_references: Some(vec![OwnerReference {
                    uid: "rs-1".into(),
                    controller: Some(true),
                    ..OwnerReference::default()
                }]),
                ..ObjectMeta::default()
            },
            spec: Some(Default::default()),
            ..Pod::default()
        }
    }

    #[test]
    fn replicas_spread_over_nodes_then_the_least_loaded_wins() {
        let nodes = [node("a"), node("b")];
        let mut used = HashMap::new();
        let mut by_owner = HashMap::new();
        let mut placed = Vec::new();
        for _ in 0..4 {
            let name = choose(&replica(), &nodes, &used, &by_owner).unwrap();
            *by_owner.entry((name.clone(), "rs-1".to_string())).or_default() += 1;
            placed.push(name);
        }
        assert_eq!(placed, ["a", "b", "a", "b"]);
        // A pod of no controller goes where less is requested.
        used.insert(
            "a".to_string(),
            Requests {
                milli_cpu: 2000,
                memory: 0,
                pods: 1,
            },
        );
        assert_eq!(
            choose(
                &Pod {
                    spec: Some(Default::default()),
                    ..Pod::default()
                },
                &nodes,
                &used,
                &by_owner
            ),
            Ok("b".into())
        );
    }
}
