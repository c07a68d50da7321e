//! The ReplicaSet controller (k/k `pkg/controller/replicaset`): keeps `spec.replicas` pods of the
//! template running, adopting matching orphans and releasing owned pods that no longer match, creating
//! the missing ones (in batches of 1, 2, 4, … as upstream's slow start) and deleting the surplus (the
//! least useful first: unscheduled, pending, not ready, newest), with `SuccessfulCreate` /
//! `SuccessfulDelete` / `FailedCreate` events, and reporting replicas, fullyLabeledReplicas,
//! readyReplicas, availableReplicas and observedGeneration.
//!
//! Each reconcile lists the ReplicaSet's pods through the API rather than from a cache, so a pod it has
//! just created is always counted: no "expectations" bookkeeping is needed at this scale.

use std::sync::Arc;
use std::time::Duration;

use eventer::Recorder;
use k8s_openapi::api::apps::v1::ReplicaSet;
use k8s_openapi::api::core::v1::Pod;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{ObjectMeta, OwnerReference};
use kube::api::{Api, DeleteParams, ListParams, Patch, PatchParams, PostParams};
use kube::runtime::controller::Action;
use kube::{Resource, ResourceExt};
use serde_json::json;
use tokio_util::sync::CancellationToken;

use super::{api_code, selector_query};

/// The event source of the controller's events (kube-controller-manager's).
pub const COMPONENT: &str = "replicaset-controller";
/// Pod creations or deletions per reconcile at most (upstream's `burstReplicas`).
const BURST: usize = 500;
/// How often a ReplicaSet is looked at with no change, to catch what a missed watch event hid.
const RESYNC: Duration = Duration::from_secs(300);

pub struct Context {
    pub client: kube::Client,
    pub recorder: Recorder,
}

#[derive(Debug, thiserror::Error)]
pub enum ReplicaSetError {
    /// An API call failed; retried with backoff.
    #[error("replicaset sync: {0}")]
    Api(#[from] kube::Error),
}

pub async fn run(
    client: kube::Client,
    recorder: Recorder,
    metrics: crate::telemetry::ControllerMetrics,
    shutdown: CancellationToken,
) {
    let context = Arc::new(Context {
        client: client.clone(),
        recorder,
    });
    super::run_controller::<ReplicaSet, Pod, _, _, _, _>(
        &client,
        "replicaset",
        context,
        reconcile,
        metrics,
        shutdown,
    )
    .await;
}

pub async fn reconcile(rs: Arc<ReplicaSet>, ctx: Arc<Context>) -> Result<Action, ReplicaSetError> {
    if rs.metadata.deletion_timestamp.is_some() {
        return Ok(Action::await_change());
    }
    let namespace = rs.namespace().unwrap_or_default();
    let pods_api: Api<Pod> = Api::namespaced(ctx.client.clone(), &namespace);
    let spec = rs.spec.clone().unwrap_or_default();
    let uid = rs.uid().unwrap_or_default();
    let query = selector_query(&spec.selector);
    // An empty selector selects nothing (upstream refuses to act on it).
    let matching = if query.is_empty() {
        Vec::new()
    } else {
        pods_api.list(&ListParams::default().labels(&query)).await?.items
    };
    let mut owned = Vec::new();
    for pod in matching {
        match controller_of(&pod) {
            Some(owner) if owner.uid == uid => owned.push(pod),
            Some(_) => {}
            // An orphan that matches: adopt it (upstream's ClaimPods), unless it is going away.
            None if pod.metadata.deletion_timestamp.is_none() && adopt(&pods_api, &pod, &rs).await? => {
                owned.push(pod)
            }
            None => {}
        }
    }
    // Owned pods the selector no longer matches are released (listed separately, by owner).
    release_unmatched(&pods_api, &rs, &uid, &query).await?;

    let active: Vec<&Pod> = owned.iter().filter(|p| is_active(p)).collect();
    let want = usize::try_from(spec.replicas.unwrap_or(1)).unwrap_or(0);
    let name = rs.name_any();
    let reference = rs.object_ref(&());
    if active.len() < want {
        let missing = (want - active.len()).min(BURST);
        let template = spec.template.clone().unwrap_or_default();
        // Slow start: 1, 2, 4, … so a template that cannot be created fails once, not `missing` times.
        let mut created = 0;
        let mut batch = 1;
        'batches: while created < missing {
            for _ in 0..batch.min(missing - created) {
                match pods_api
                    .create(&PostParams::default(), &pod_from(&rs, &template))
                    .await
                {
                    Ok(pod) => {
                        ctx.recorder.normal(
                            &reference,
                            "SuccessfulCreate",
                            format!("Created pod: {}", pod.name_any()),
                        );
                        created += 1;
                    }
                    Err(e) => {
                        ctx.recorder.warning(
                            &reference,
                            "FailedCreate",
                            format!("Error creating: {}", error_text(&e)),
                        );
                        break 'batches;
                    }
                }
            }
            batch *= 2;
        }
    } else if active.len() > want {
        let mut doomed = active.clone();
        doomed.sort_by_key(|p| deletion_rank(p));
        for pod in doomed.into_iter().take((active.len() - want).min(BURST)) {
            match pods_api.delete(&pod.name_any(), &DeleteParams::default()).await {
                Ok(_) => ctx.recorder.normal(
                    &reference,
                    "SuccessfulDelete",
                    format!("Deleted pod: {}", pod.name_any()),
                ),
                Err(e) if api_code(&e) == Some(404) => {}
                Err(e) => {
                    ctx.recorder.warning(
                        &reference,
                        "FailedDelete",
                        format!("Error deleting: {}", error_text(&e)),
                    );
                    return Err(e.into());
                }
            }
        }
    }
    update_status(&ctx.client, &rs, &owned).await?;
    tracing::debug!(replicaset = %name, namespace = %namespace, active = active.len(), want, "replicaset synced");
    Ok(Action::requeue(RESYNC))
}

/// A new pod of `rs`: the template's metadata and spec, named after the set, controlled by it.
fn pod_from(rs: &ReplicaSet, template: &k8s_openapi::api::core::v1::PodTemplateSpec) -> Pod {
    let meta = template.metadata.clone().unwrap_or_default();
    Pod {
        metadata: ObjectMeta {
            generate_name: Some(format!("{}-", rs.name_any())),
            namespace: rs.namespace(),
            labels: meta.labels,
            annotations: meta.annotations,
            owner_references: Some(vec![owner_reference(rs)]),
            ..ObjectMeta::default()
        },
        spec: template.spec.clone(),
        ..Pod::default()
    }
}

fn owner_reference(rs: &ReplicaSet) -> OwnerReference {
    OwnerReference {
        api_version: "apps/v1".into(),
        kind: "ReplicaSet".into(),
        name: rs.name_any(),
        uid: rs.uid().unwrap_or_default(),
        controller: Some(true),
        block_owner_deletion: Some(true),
    }
}

fn controller_of(pod: &Pod) -> Option<&OwnerReference> {
    pod.metadata
        .owner_references
        .iter()
        .flatten()
        .find(|o| o.controller == Some(true))
}

/// Makes `rs` the controller of an orphan `pod`, guarded by the pod's resourceVersion; false if the pod
/// changed or went meanwhile (the next reconcile sees it as it is).
async fn adopt(pods: &Api<Pod>, pod: &Pod, rs: &ReplicaSet) -> Result<bool, kube::Error> {
    let mut owners = pod.metadata.owner_references.clone().unwrap_or_default();
    owners.push(owner_reference(rs));
    let patch =
        json!({"metadata": {"resourceVersion": pod.metadata.resource_version, "ownerReferences": owners}});
    match pods
        .patch(&pod.name_any(), &PatchParams::default(), &Patch::Merge(patch))
        .await
    {
        Ok(_) => Ok(true),
        Err(e) if matches!(api_code(&e), Some(404 | 409)) => Ok(false),
        Err(e) => Err(e),
    }
}

/// Releases the pods `rs` controls that its selector no longer matches (their labels were changed).
async fn release_unmatched(
    pods: &Api<Pod>,
    rs: &ReplicaSet,
    uid: &str,
    query: &str,
) -> Result<(), kube::Error> {
    let selector = rs.spec.as_ref().map(|s| &s.selector);
    for pod in pods.list(&ListParams::default()).await?.items {
        let ours = controller_of(&pod).is_some_and(|o| o.uid == uid);
        if !ours || selector.is_some_and(|s| !query.is_empty() && super::selector_matches(s, pod.labels())) {
            continue;
        }
        let owners: Vec<_> = pod
            .owner_references()
            .iter()
            .filter(|o| o.uid != uid)
            .cloned()
            .collect();
        let owners = if owners.is_empty() {
            serde_json::Value::Null
        } else {
            json!(owners)
        };
        let patch = json!({"metadata": {"resourceVersion": pod.metadata.resource_version, "ownerReferences": owners}});
        match pods
            .patch(&pod.name_any(), &PatchParams::default(), &Patch::Merge(patch))
            .await
        {
            Err(e) if !matches!(api_code(&e), Some(404 | 409)) => return Err(e),
            _ => {}
        }
    }
    Ok(())
}

/// A pod that counts towards the replicas: not finished, not going away.
pub fn is_active(pod: &Pod) -> bool {
    let phase = pod.status.as_ref().and_then(|s| s.phase.as_deref());
    !matches!(phase, Some("Succeeded" | "Failed")) && pod.metadata.deletion_timestamp.is_none()
}

pub fn is_ready(pod: &Pod) -> bool {
    let conditions = pod.status.as_ref().and_then(|s| s.conditions.as_ref());
    conditions
        .into_iter()
        .flatten()
        .any(|c| c.type_ == "Ready" && c.status == "True")
}

/// Which surplus pod goes first (upstream's `ActivePods` order): unassigned before assigned, pending
/// before unknown before running, not ready before ready, then the newest.
fn deletion_rank(pod: &Pod) -> (bool, u8, bool, std::cmp::Reverse<Option<jiff::Timestamp>>) {
    let assigned = pod
        .spec
        .as_ref()
        .and_then(|s| s.node_name.as_deref())
        .is_some_and(|n| !n.is_empty());
    let phase = match pod.status.as_ref().and_then(|s| s.phase.as_deref()) {
        Some("Pending") | None => 0,
        Some("Unknown") => 1,
        _ => 2,
    };
    let created = pod.metadata.creation_timestamp.as_ref().map(|t| t.0);
    (assigned, phase, is_ready(pod), std::cmp::Reverse(created))
}

async fn update_status(client: &kube::Client, rs: &ReplicaSet, owned: &[Pod]) -> Result<(), kube::Error> {
    let active: Vec<&Pod> = owned.iter().filter(|p| is_active(p)).collect();
    let template_labels = rs
        .spec
        .as_ref()
        .and_then(|s| s.template.as_ref())
        .and_then(|t| t.metadata.as_ref())
        .and_then(|m| m.labels.clone())
        .unwrap_or_default();
    let fully_labeled = active
        .iter()
        .filter(|p| template_labels.iter().all(|(k, v)| p.labels().get(k) == Some(v)))
        .count();
    let ready = active.iter().filter(|p| is_ready(p)).count();
    let status = json!({
        "replicas": active.len(),
        "fullyLabeledReplicas": fully_labeled,
        "readyReplicas": ready,
        "availableReplicas": ready,
        "observedGeneration": rs.metadata.generation,
    });
    let current = rs.status.as_ref().map(|s| {
        json!({
            "replicas": s.replicas,
            "fullyLabeledReplicas": s.fully_labeled_replicas.unwrap_or(0),
            "readyReplicas": s.ready_replicas.unwrap_or(0),
            "availableReplicas": s.available_replicas.unwrap_or(0),
            "observedGeneration": s.observed_generation,
        })
    });
    if current.as_ref() == Some(&status) {
        return Ok(());
    }
    let api: Api<ReplicaSet> = Api::namespaced(client.clone(), &rs.namespace().unwrap_or_default());
    match api
        .patch_status(
            &rs.name_any(),
            &PatchParams::default(),
            &Patch::Merge(json!({"status": status})),
        )
        .await
    {
        Err(e) if !matches!(api_code(&e), Some(404 | 409)) => Err(e),
        _ => Ok(()),
    }
}

/// An API error as upstream's events quote it: the status message, not the HTTP framing.
fn error_text(error: &kube::Error) -> String {
    match error {
        kube::Error::Api(status) => status.message.clone(),
        other => other.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use k8s_openapi::api::core::v1::{PodCondition, PodSpec, PodStatus};
    use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;

    use super::*;

    fn pod(node: Option<&str>, phase: &str, ready: bool, created: i64) -> Pod {
        Pod {
            metadata: ObjectMeta {
                name: Some(format!("p{created}")),
                creation_timestamp: Some(Time(
                    jiff::Timestamp::from_second(1_800_000_000 + created).unwrap(),
                )),
                ..ObjectMeta::default()
            },
            spec: Some(PodSpec {
                node_name: node.map(str::to_string),
                ..PodSpec::default()
            }),
            status: Some(PodStatus {
                phase: Some(phase.into()),
                conditions: Some(vec![PodCondition {
                    type_: "Ready".into(),
                    status: if ready { "True" } else { "False" }.into(),
                    ..PodCondition::default()
                }]),
                ..PodStatus::default()
            }),
        }
    }

    #[test]
    fn the_least_useful_pods_go_first() {
        let mut pods = [
            pod(Some("n"), "Running", true, 1),
            pod(Some("n"), "Running", true, 5),
            pod(Some("n"), "Running", false, 2),
            pod(Some("n"), "Pending", false, 3),
            pod(None, "Pending", false, 4),
        ];
        pods.sort_by_key(deletion_rank);
        let order: Vec<String> = pods.iter().map(|p| p.name_any()).collect();
        assert_eq!(order, ["p4", "p3", "p2", "p5", "p1"]);
    }

    #[test]
    fn finished_and_terminating_pods_do_not_count() {
        assert!(is_active(&pod(None, "Running", true, 1)));
        assert!(!is_active(&pod(None, "Succeeded", false, 1)));
        let mut going = pod(None, "Running", true, 1);
        going.metadata.deletion_timestamp = Some(Time(jiff::Timestamp::now()));
        assert!(!is_active(&going));
    }
}
