//! The Deployment controller (k/k `pkg/controller/deployment`): one ReplicaSet per pod template, named
//! after the template's hash (`pod-template-hash`); the ReplicaSet of the current template is scaled up
//! and the others down, by the RollingUpdate arithmetic (maxSurge, maxUnavailable) or Recreate; revisions
//! in `deployment.kubernetes.io/revision` (a template seen before takes the next revision, which is how
//! `kubectl rollout undo` works), old ReplicaSets pruned to `revisionHistoryLimit`, `ScalingReplicaSet`
//! events, and the status and conditions (`Available`, `Progressing`) `kubectl rollout status` reads.
//!
//! Each reconcile lists the namespace's ReplicaSets through the API, so its view is never behind its own
//! writes.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use eventer::Recorder;
use k8s_openapi::api::apps::v1::{Deployment, DeploymentCondition, ReplicaSet, ReplicaSetSpec};
use k8s_openapi::api::core::v1::PodTemplateSpec;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{ObjectMeta, OwnerReference, Time};
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;
use kube::api::{Api, DeleteParams, ListParams, Patch, PatchParams, PostParams};
use kube::runtime::controller::Action;
use kube::{Resource, ResourceExt};
use serde_json::json;
use tokio_util::sync::CancellationToken;

use super::api_code;

/// The event source of the controller's events (kube-controller-manager's).
pub const COMPONENT: &str = "deployment-controller";
pub const REVISION: &str = "deployment.kubernetes.io/revision";
const DESIRED_REPLICAS: &str = "deployment.kubernetes.io/desired-replicas";
const MAX_REPLICAS: &str = "deployment.kubernetes.io/max-replicas";
pub const HASH_LABEL: &str = "pod-template-hash";
/// While a rollout is under way, look again this often (progress deadlines, availability).
const RECHECK: Duration = Duration::from_secs(5);

pub struct Context {
    pub client: kube::Client,
    pub recorder: Recorder,
}

#[derive(Debug, thiserror::Error)]
pub enum DeploymentError {
    /// An API call failed; retried with backoff.
    #[error("deployment sync: {0}")]
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
    super::run_controller::<Deployment, ReplicaSet, _, _, _, _>(
        &client,
        "deployment",
        context,
        reconcile,
        metrics,
        shutdown,
    )
    .await;
}

/// An int-or-percent of `total` (upstream's `GetScaledValueFromIntOrPercent`).
fn scaled(value: Option<&IntOrString>, total: i32, round_up: bool, default: &str) -> i32 {
    match value {
        Some(IntOrString::Int(n)) => *n,
        Some(IntOrString::String(s)) => percent(s, total, round_up),
        None => percent(default, total, round_up),
    }
}

fn percent(text: &str, total: i32, round_up: bool) -> i32 {
    let p: i64 = text.trim_end_matches('%').parse().unwrap_or(0);
    let product = p * i64::from(total);
    let value = if round_up {
        (product + 99) / 100
    } else {
        product / 100
    };
    i32::try_from(value).unwrap_or(i32::MAX)
}

/// maxSurge and maxUnavailable for `replicas` (both zero would deadlock: unavailable becomes 1).
pub fn surge_and_unavailable(d: &Deployment, replicas: i32) -> (i32, i32) {
    let rolling = d
        .spec
        .as_ref()
        .and_then(|s| s.strategy.as_ref())
        .and_then(|s| s.rolling_update.as_ref());
    let surge = scaled(rolling.and_then(|r| r.max_surge.as_ref()), replicas, true, "25%");
    let unavailable = scaled(
        rolling.and_then(|r| r.max_unavailable.as_ref()),
        replicas,
        false,
        "25%",
    );
    if surge == 0 && unavailable == 0 {
        (0, 1)
    } else {
        (surge, unavailable)
    }
}

/// The new ReplicaSet's size this step (upstream's `NewRSNewReplicas` for RollingUpdate).
pub fn new_rs_replicas(replicas: i32, surge: i32, new_current: i32, all_current: i32) -> i32 {
    if new_current >= replicas {
        return replicas;
    }
    let max_total = replicas + surge;
    if all_current >= max_total {
        return new_current;
    }
    new_current + (max_total - all_current).min(replicas - new_current)
}

/// How many old replicas may go this step (upstream's `reconcileOldReplicaSets`): what keeps at least
/// `replicas - maxUnavailable` available, counting the new ReplicaSet's unavailable ones.
pub fn old_scale_down(
    replicas: i32,
    unavailable: i32,
    all_current: i32,
    new_current: i32,
    new_available: i32,
    available: i32,
) -> i32 {
    let min_available = replicas - unavailable;
    let new_unavailable = new_current - new_available;
    let max_scaled_down = all_current - min_available - new_unavailable;
    if max_scaled_down <= 0 {
        return 0;
    }
    // Unavailable old replicas may always go (cleanupUnhealthyReplicas); available ones only down to the
    // minimum.
    let old_unhealthy = (all_current - new_current) - (available - new_available);
    let healthy_budget = (available - min_available).max(0);
    (old_unhealthy.max(0) + healthy_budget)
        .min(max_scaled_down)
        .min(all_current - new_current)
}

/// The template hash (the `pod-template-hash` label and the ReplicaSet's name suffix): FNV-1a over the
/// template and the collision count, in the alphabet upstream's `SafeEncodeString` uses.
pub fn template_hash(template: &PodTemplateSpec, collisions: Option<i32>) -> String {
    let mut hash: u32 = 0x811c_9dc5;
    let text = serde_json::to_string(template).expect("a template serializes")
        + &collisions.map_or(String::new(), |c| c.to_string());
    for byte in text.bytes() {
        hash ^= u32::from(byte);
        hash = hash.wrapping_mul(0x0100_0193);
    }
    const ALPHABET: &[u8] = b"bcdfghjklmnpqrstvwxz2456789";
    hash.to_string()
        .bytes()
        .map(|b| ALPHABET[usize::from(b) % ALPHABET.len()] as char)
        .collect()
}

fn revision(rs: &ReplicaSet) -> i64 {
    rs.annotations()
        .get(REVISION)
        .and_then(|r| r.parse().ok())
        .unwrap_or(0)
}

/// A ReplicaSet's template with its hash label taken out, to compare with the Deployment's.
fn template_without_hash(rs: &ReplicaSet) -> Option<PodTemplateSpec> {
    let mut template = rs.spec.as_ref()?.template.clone()?;
    if let Some(labels) = template.metadata.as_mut().and_then(|m| m.labels.as_mut()) {
        labels.remove(HASH_LABEL);
    }
    Some(template)
}

pub async fn reconcile(d: Arc<Deployment>, ctx: Arc<Context>) -> Result<Action, DeploymentError> {
    if d.metadata.deletion_timestamp.is_some() {
        return Ok(Action::await_change());
    }
    let namespace = d.namespace().unwrap_or_default();
    let sets: Api<ReplicaSet> = Api::namespaced(ctx.client.clone(), &namespace);
    let uid = d.uid().unwrap_or_default();
    let owned: Vec<ReplicaSet> = sets
        .list(&ListParams::default())
        .await?
        .items
        .into_iter()
        .filter(|rs| {
            rs.owner_references()
                .iter()
                .any(|o| o.controller == Some(true) && o.uid == uid)
        })
        .filter(|rs| rs.metadata.deletion_timestamp.is_none())
        .collect();
    let spec = d.spec.clone().unwrap_or_default();
    let replicas = spec.replicas.unwrap_or(1);
    let template = spec.template.clone();
    let reference = d.object_ref(&());
    let max_old = owned
        .iter()
        .filter(|rs| template_without_hash(rs).as_ref() != Some(&template))
        .map(revision)
        .max()
        .unwrap_or(0);
    let (surge, unavailable) = surge_and_unavailable(&d, replicas);
    let recreate = spec.strategy.as_ref().and_then(|s| s.type_.as_deref()) == Some("Recreate");

    let existing = owned
        .iter()
        .find(|rs| template_without_hash(rs).as_ref() == Some(&template))
        .cloned();
    let mut created_new = false;
    let new_rs = match existing {
        Some(rs) if revision(&rs) <= max_old => {
            // A template seen before (a rollback): it becomes the newest revision.
            let patch = json!({"metadata": {"annotations": {REVISION: (max_old + 1).to_string()}}});
            sets.patch(&rs.name_any(), &PatchParams::default(), &Patch::Merge(patch))
                .await?
        }
        Some(rs) => rs,
        None if spec.paused == Some(true) => return Ok(Action::await_change()),
        None => {
            created_new = true;
            create_replica_set(&sets, &d, &template, max_old + 1, replicas, surge).await?
        }
    };
    let olds: Vec<&ReplicaSet> = owned.iter().filter(|rs| rs.uid() != new_rs.uid()).collect();
    let spec_replicas = |rs: &ReplicaSet| rs.spec.as_ref().and_then(|s| s.replicas).unwrap_or(0);
    let available = |rs: &ReplicaSet| rs.status.as_ref().and_then(|s| s.available_replicas).unwrap_or(0);
    let active = |rs: &ReplicaSet| rs.status.as_ref().map_or(0, |s| s.replicas);

    let mut progressed = false;
    if spec.paused != Some(true) {
        let new_current = spec_replicas(&new_rs);
        let all_current: i32 = olds.iter().map(|rs| spec_replicas(rs)).sum::<i32>() + new_current;
        if recreate {
            if olds.iter().any(|rs| spec_replicas(rs) > 0) {
                for old in olds.iter().filter(|rs| spec_replicas(rs) > 0) {
                    scale(&sets, &ctx.recorder, &reference, old, 0, replicas, surge).await?;
                    progressed = true;
                }
            } else if olds.iter().all(|rs| active(rs) == 0) && new_current != replicas {
                scale(
                    &sets,
                    &ctx.recorder,
                    &reference,
                    &new_rs,
                    replicas,
                    replicas,
                    surge,
                )
                .await?;
                progressed = true;
            }
        } else {
            let target = new_rs_replicas(replicas, surge, new_current, all_current);
            if target != new_current {
                scale(&sets, &ctx.recorder, &reference, &new_rs, target, replicas, surge).await?;
                progressed = true;
            }
            let all_now = all_current - new_current + target;
            let total_available: i32 = owned.iter().map(available).sum();
            let mut budget = old_scale_down(
                replicas,
                unavailable,
                all_now,
                target,
                available(&new_rs),
                total_available,
            );
            let mut oldest_first = olds.clone();
            oldest_first
                .sort_by_key(|rs| (revision(rs), rs.metadata.creation_timestamp.as_ref().map(|t| t.0)));
            for old in oldest_first {
                if budget <= 0 {
                    break;
                }
                let current = spec_replicas(old);
                let down = current.min(budget);
                if down > 0 {
                    scale(
                        &sets,
                        &ctx.recorder,
                        &reference,
                        old,
                        current - down,
                        replicas,
                        surge,
                    )
                    .await?;
                    budget -= down;
                    progressed = true;
                }
            }
        }
    }
    prune_history(&sets, &d, &olds).await?;
    let sets_now: Vec<ReplicaSet> = sets
        .list(&ListParams::default())
        .await?
        .items
        .into_iter()
        .filter(|rs| rs.owner_references().iter().any(|o| o.uid == uid))
        .collect();
    let complete = update_status(
        &ctx.client,
        &d,
        &new_rs,
        &sets_now,
        created_new,
        progressed,
        unavailable,
    )
    .await?;
    Ok(if complete {
        Action::requeue(Duration::from_secs(300))
    } else {
        Action::requeue(RECHECK)
    })
}

async fn create_replica_set(
    sets: &Api<ReplicaSet>,
    d: &Deployment,
    template: &PodTemplateSpec,
    revision: i64,
    replicas: i32,
    surge: i32,
) -> Result<ReplicaSet, kube::Error> {
    let collisions = d.status.as_ref().and_then(|s| s.collision_count);
    let hash = template_hash(template, collisions);
    let mut template = template.clone();
    let meta = template.metadata.get_or_insert_with(ObjectMeta::default);
    meta.labels
        .get_or_insert_with(BTreeMap::new)
        .insert(HASH_LABEL.into(), hash.clone());
    let mut selector = d.spec.as_ref().map(|s| s.selector.clone()).unwrap_or_default();
    selector
        .match_labels
        .get_or_insert_with(BTreeMap::new)
        .insert(HASH_LABEL.into(), hash.clone());
    let rs = ReplicaSet {
        metadata: ObjectMeta {
            name: Some(format!("{}-{hash}", d.name_any())),
            namespace: d.namespace(),
            labels: template.metadata.as_ref().and_then(|m| m.labels.clone()),
            annotations: Some(BTreeMap::from([
                (REVISION.to_string(), revision.to_string()),
                (DESIRED_REPLICAS.to_string(), replicas.to_string()),
                (MAX_REPLICAS.to_string(), (replicas + surge).to_string()),
            ])),
            owner_references: Some(vec![OwnerReference {
                api_version: "apps/v1".into(),
                kind: "Deployment".into(),
                name: d.name_any(),
                uid: d.uid().unwrap_or_default(),
                controller: Some(true),
                block_owner_deletion: Some(true),
            }]),
            ..ObjectMeta::default()
        },
        spec: Some(ReplicaSetSpec {
            replicas: Some(0),
            min_ready_seconds: d.spec.as_ref().and_then(|s| s.min_ready_seconds),
            selector,
            template: Some(template),
        }),
        status: None,
    };
    match sets.create(&PostParams::default(), &rs).await {
        // A ReplicaSet of that name that is not ours: upstream bumps collisionCount and tries another
        // name next time.
        Err(e) if api_code(&e) == Some(409) => {
            let count = collisions.unwrap_or(0) + 1;
            let api: Api<Deployment> =
                Api::namespaced(sets.clone().into_client(), &d.namespace().unwrap_or_default());
            api.patch_status(
                &d.name_any(),
                &PatchParams::default(),
                &Patch::Merge(json!({"status": {"collisionCount": count}})),
            )
            .await?;
            Err(e)
        }
        other => other,
    }
}

/// Sets a ReplicaSet's size (and the annotations upstream keeps with it), with the event.
async fn scale(
    sets: &Api<ReplicaSet>,
    recorder: &Recorder,
    reference: &k8s_openapi::api::core::v1::ObjectReference,
    rs: &ReplicaSet,
    to: i32,
    desired: i32,
    surge: i32,
) -> Result<(), kube::Error> {
    let from = rs.spec.as_ref().and_then(|s| s.replicas).unwrap_or(0);
    let patch = json!({
        "metadata": {"annotations": {DESIRED_REPLICAS: desired.to_string(), MAX_REPLICAS: (desired + surge).to_string()}},
        "spec": {"replicas": to},
    });
    sets.patch(&rs.name_any(), &PatchParams::default(), &Patch::Merge(patch))
        .await?;
    let direction = if to > from { "up" } else { "down" };
    recorder.normal(
        reference,
        "ScalingReplicaSet",
        format!(
            "Scaled {direction} replica set {} to {to} from {from}",
            rs.name_any()
        ),
    );
    Ok(())
}

/// Deletes the oldest empty old ReplicaSets beyond `revisionHistoryLimit` (default 10).
async fn prune_history(
    sets: &Api<ReplicaSet>,
    d: &Deployment,
    olds: &[&ReplicaSet],
) -> Result<(), kube::Error> {
    let limit = usize::try_from(
        d.spec
            .as_ref()
            .and_then(|s| s.revision_history_limit)
            .unwrap_or(10),
    )
    .unwrap_or(0);
    let mut empty: Vec<&&ReplicaSet> = olds
        .iter()
        .filter(|rs| {
            rs.spec.as_ref().and_then(|s| s.replicas) == Some(0)
                && rs.status.as_ref().is_none_or(|s| s.replicas == 0)
        })
        .collect();
    if empty.len() <= limit {
        return Ok(());
    }
    empty.sort_by_key(|rs| revision(rs));
    for rs in &empty[..empty.len() - limit] {
        match sets.delete(&rs.name_any(), &DeleteParams::background()).await {
            Err(e) if api_code(&e) != Some(404) => return Err(e),
            _ => {}
        }
    }
    Ok(())
}

/// Writes the status `kubectl rollout status` reads; says whether the rollout is complete.
async fn update_status(
    client: &kube::Client,
    d: &Deployment,
    new_rs: &ReplicaSet,
    sets: &[ReplicaSet],
    created_new: bool,
    progressed: bool,
    unavailable: i32,
) -> Result<bool, kube::Error> {
    let spec = d.spec.clone().unwrap_or_default();
    let desired = spec.replicas.unwrap_or(1);
    let status_of = |rs: &ReplicaSet| rs.status.clone().unwrap_or_default();
    let replicas: i32 = sets.iter().map(|rs| status_of(rs).replicas).sum();
    let ready: i32 = sets
        .iter()
        .map(|rs| status_of(rs).ready_replicas.unwrap_or(0))
        .sum();
    let available: i32 = sets
        .iter()
        .map(|rs| status_of(rs).available_replicas.unwrap_or(0))
        .sum();
    let spec_total: i32 = sets
        .iter()
        .map(|rs| rs.spec.as_ref().and_then(|s| s.replicas).unwrap_or(0))
        .sum();
    let new_now = sets.iter().find(|rs| rs.uid() == new_rs.uid()).unwrap_or(new_rs);
    let updated = status_of(new_now).replicas;
    let complete = updated == desired && replicas == desired && available == desired;
    let now = Time(jiff::Timestamp::now());
    let name = new_rs.name_any();
    let old_conditions = d
        .status
        .as_ref()
        .and_then(|s| s.conditions.clone())
        .unwrap_or_default();
    let condition = |type_: &str, status: &str, reason: &str, message: String| {
        let old = old_conditions.iter().find(|c| c.type_ == type_);
        let same = old.is_some_and(|c| c.status == status && c.reason.as_deref() == Some(reason));
        DeploymentCondition {
            type_: type_.into(),
            status: status.into(),
            reason: Some(reason.into()),
            message: Some(message),
            last_update_time: if same {
                old.and_then(|c| c.last_update_time.clone())
            } else {
                Some(now.clone())
            },
            last_transition_time: match old {
                Some(c) if c.status == status => c.last_transition_time.clone(),
                _ => Some(now.clone()),
            },
        }
    };
    let available_condition = if available >= desired - unavailable {
        condition(
            "Available",
            "True",
            "MinimumReplicasAvailable",
            "Deployment has minimum availability.".into(),
        )
    } else {
        condition(
            "Available",
            "False",
            "MinimumReplicasUnavailable",
            "Deployment does not have minimum availability.".into(),
        )
    };
    let progressing_before = old_conditions.iter().find(|c| c.type_ == "Progressing");
    let deadline = spec.progress_deadline_seconds.unwrap_or(600);
    let stalled = progressing_before
        .and_then(|c| c.last_update_time.as_ref())
        .is_some_and(|t| {
            jiff::Timestamp::now().duration_since(t.0) > jiff::SignedDuration::from_secs(i64::from(deadline))
        });
    let progressing = if complete {
        condition(
            "Progressing",
            "True",
            "NewReplicaSetAvailable",
            format!("ReplicaSet \"{name}\" has successfully progressed."),
        )
    } else if created_new {
        condition(
            "Progressing",
            "True",
            "NewReplicaSetCreated",
            format!("Created new replica set \"{name}\""),
        )
    } else if progressing_before.is_some_and(|c| c.reason.as_deref() == Some("ProgressDeadlineExceeded"))
        || stalled
    {
        condition(
            "Progressing",
            "False",
            "ProgressDeadlineExceeded",
            format!("ReplicaSet \"{name}\" has timed out progressing."),
        )
    } else if progressed {
        condition(
            "Progressing",
            "True",
            "ReplicaSetUpdated",
            format!("ReplicaSet \"{name}\" is progressing."),
        )
    } else {
        progressing_before.cloned().unwrap_or_else(|| {
            condition(
                "Progressing",
                "True",
                "FoundNewReplicaSet",
                format!("Found new replica set \"{name}\""),
            )
        })
    };
    let status = json!({
        "observedGeneration": d.metadata.generation,
        "replicas": replicas,
        "updatedReplicas": updated,
        "readyReplicas": ready,
        "availableReplicas": available,
        "unavailableReplicas": (spec_total - available).max(0),
        "conditions": [available_condition, progressing],
    });
    // The revision goes with the status (through /status, so the generation does not move).
    let revision = new_rs.annotations().get(REVISION).cloned().unwrap_or_default();
    let api: Api<Deployment> = Api::namespaced(client.clone(), &d.namespace().unwrap_or_default());
    let current = serde_json::to_value(d.status.clone().unwrap_or_default()).unwrap_or_default();
    let mut merged = current.clone();
    if let (Some(merged), Some(new)) = (merged.as_object_mut(), status.as_object()) {
        for (k, v) in new {
            merged.insert(k.clone(), v.clone());
        }
    }
    if merged != current || d.annotations().get(REVISION) != Some(&revision) {
        let patch = json!({"metadata": {"annotations": {REVISION: revision}}, "status": status});
        match api
            .patch_status(&d.name_any(), &PatchParams::default(), &Patch::Merge(patch))
            .await
        {
            Err(e) if !matches!(api_code(&e), Some(404 | 409)) => return Err(e),
            _ => {}
        }
    }
    Ok(complete)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn surge_rounds_up_and_unavailable_down() {
        let mut d = Deployment::default();
        assert_eq!(surge_and_unavailable(&d, 10), (3, 2), "25% of 10");
        assert_eq!(surge_and_unavailable(&d, 2), (1, 0));
        d.spec = Some(Default::default());
        let rolling = |surge: IntOrString, unavailable: IntOrString| Deployment {
            spec: Some(k8s_openapi::api::apps::v1::DeploymentSpec {
                strategy: Some(k8s_openapi::api::apps::v1::DeploymentStrategy {
                    rolling_update: Some(k8s_openapi::api::apps::v1::RollingUpdateDeployment {
                        max_surge: Some(surge),
                        max_unavailable: Some(unavailable),
                    }),
                    ..Default::default()
                }),
                ..Default::default()
            }),
            ..Deployment::default()
        };
        assert_eq!(
            surge_and_unavailable(&rolling(IntOrString::Int(0), IntOrString::Int(0)), 3),
            (0, 1),
            "never both zero"
        );
        assert_eq!(
            surge_and_unavailable(
                &rolling(IntOrString::String("50%".into()), IntOrString::Int(0)),
                3
            ),
            (2, 0)
        );
    }

    #[test]
    fn the_new_replicaset_grows_within_the_surge() {
        // 3 replicas, surge 1: a fresh rollout with 3 old pods adds one new pod at a time.
        assert_eq!(new_rs_replicas(3, 1, 0, 3), 1);
        assert_eq!(new_rs_replicas(3, 1, 1, 4), 1, "at the ceiling: wait");
        assert_eq!(new_rs_replicas(3, 1, 1, 3), 2);
        assert_eq!(new_rs_replicas(3, 1, 3, 3), 3);
        assert_eq!(new_rs_replicas(3, 1, 5, 5), 3, "scaled down to the spec");
        // A first deployment: straight to the replicas.
        assert_eq!(new_rs_replicas(3, 1, 0, 0), 3);
    }

    #[test]
    fn old_replicasets_shrink_only_while_enough_stay_available() {
        // 3 replicas, maxUnavailable 0: old 3 available, new 1 not yet available: nothing may go.
        assert_eq!(old_scale_down(3, 0, 4, 1, 0, 3), 0);
        // The new one became available: one old may go.
        assert_eq!(old_scale_down(3, 0, 4, 1, 1, 4), 1);
        // maxUnavailable 1: one old may go at once.
        assert_eq!(old_scale_down(3, 1, 4, 1, 0, 3), 1);
        // Unavailable old pods may always go (within the budget).
        assert_eq!(old_scale_down(3, 0, 4, 1, 1, 2), 1);
    }

    #[test]
    fn template_hashes_are_stable_safe_and_change_with_the_template_or_collisions() {
        let mut template = PodTemplateSpec::default();
        let a = template_hash(&template, None);
        assert_eq!(a, template_hash(&template, None));
        assert!(
            a.chars().all(|c| "bcdfghjklmnpqrstvwxz2456789".contains(c)),
            "{a}"
        );
        assert_ne!(a, template_hash(&template, Some(1)));
        template.metadata = Some(ObjectMeta {
            labels: Some(BTreeMap::from([("a".into(), "b".into())])),
            ..Default::default()
        });
        assert_ne!(a, template_hash(&template, None));
    }
}
