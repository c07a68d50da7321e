//! The garbage collector: deletes objects whose owners are all gone, and carries out the Foreground and
//! Orphan deletion policies (k/k `pkg/controller/garbagecollector`).
//!
//! It keeps a cache of every stored type (one watcher each) and, after any change, makes one pass over
//! the ownership graph built from that cache. That is not kube-runtime's per-object `Controller`: what
//! triggers work is cross-type (a Deployment's deletion concerns its ReplicaSets), and at one machine's
//! scale a pass over the whole graph costs less than keeping a persistent one in step. Before deleting a
//! dependent as dangling it confirms the owners' absence with live reads, as upstream does, so a cache that
//! lags behind a just-created owner never costs an object.
//!
//! As upstream: events are not collected (they expire by TTL instead, and watching them all would cost
//! more than everything else together); an owner reference counts only where the owner could own the
//! dependent (a namespaced owner in the dependent's namespace, or a cluster-scoped owner), and one that
//! points across namespaces gets an `OwnerRefInvalidNamespace` warning on the dependent; a namespaced
//! dependent whose owners are all gone that way is deleted, while a cluster-scoped dependent naming a
//! namespaced owner (or any owner of a kind not served) is left alone; dangling owner references of an
//! object that still has a live owner are removed.

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use eventer::Recorder;
use k8s_openapi::api::core::v1::ObjectReference;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::OwnerReference;
use kube::api::{Api, DeleteParams, DynamicObject, Patch, PatchParams, PropagationPolicy};
use kube::core::ApiResource;
use kube::runtime::reflector::{Store, store::Writer};
use kube::runtime::{WatchStreamExt, watcher};
use serde_json::json;
use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;

use super::{api_code, api_resource, drive_reflector, stored_types};
use crate::api::objects::{FINALIZER_FOREGROUND, FINALIZER_ORPHAN};
use crate::api::resources::ResourceType;
use crate::telemetry::{ControllerMetrics, ReconcileFinished};

/// A pass runs this long after the first change it answers, so bursts of changes share one pass.
const DEBOUNCE: Duration = Duration::from_millis(50);
/// A pass also runs this often with no change, to retry what failed.
const RESYNC: Duration = Duration::from_secs(30);

struct Cache {
    rt: &'static ResourceType,
    resource: ApiResource,
    store: Store<DynamicObject>,
}

/// The event source of the garbage collector's events (kube-controller-manager's).
pub const COMPONENT: &str = "garbage-collector-controller";

pub async fn run(
    client: kube::Client,
    recorder: Recorder,
    metrics: ControllerMetrics,
    shutdown: CancellationToken,
) {
    let changed = Arc::new(Notify::new());
    let mut caches = Vec::new();
    for rt in stored_types().filter(|rt| rt.plural != "events") {
        let resource = api_resource(rt);
        let writer = Writer::<DynamicObject>::new(resource.clone());
        caches.push(Cache {
            rt,
            resource: resource.clone(),
            store: writer.as_reader(),
        });
        let api: Api<DynamicObject> = Api::all_with(client.clone(), &resource);
        let stream = watcher(api, watcher::Config::default())
            .default_backoff()
            .reflect(writer);
        let changed = changed.clone();
        drive_reflector(stream, shutdown.clone(), "garbage collector", move |_| {
            changed.notify_one()
        });
    }
    for cache in &caches {
        tokio::select! {
            _ = shutdown.cancelled() => return,
            _ = cache.store.wait_until_ready() => {}
        }
    }
    tracing::info!("garbage collector started");
    let gc = GarbageCollector {
        client,
        caches,
        recorder,
        reported: Mutex::default(),
    };
    loop {
        let started = std::time::Instant::now();
        let result = gc.pass().await;
        let error = result.as_ref().err().map(|e| e as &dyn std::fmt::Display);
        ReconcileFinished {
            controller: "garbagecollector",
            elapsed: started.elapsed(),
            error,
        }
        .emit(&metrics);
        if let Err(e) = result {
            tracing::warn!(error = %e, "garbage collection pass failed");
        }
        tokio::select! {
            _ = shutdown.cancelled() => return,
            _ = changed.notified() => tokio::time::sleep(DEBOUNCE).await,
            _ = tokio::time::sleep(RESYNC) => {}
        }
    }
}

struct GarbageCollector {
    client: kube::Client,
    caches: Vec<Cache>,
    recorder: Recorder,
    /// (dependent uid, owner uid) pairs already reported as crossing namespaces, so each gets one event.
    reported: Mutex<HashSet<(String, String)>>,
}

/// One object of the graph.
#[derive(Clone)]
struct Node<'a> {
    cache: &'a Cache,
    object: Arc<DynamicObject>,
}

impl Node<'_> {
    fn uid(&self) -> &str {
        self.object.metadata.uid.as_deref().unwrap_or_default()
    }

    fn deleting(&self) -> bool {
        self.object.metadata.deletion_timestamp.is_some()
    }

    fn has_finalizer(&self, name: &str) -> bool {
        self.object
            .metadata
            .finalizers
            .iter()
            .flatten()
            .any(|f| f == name)
    }

    fn api(&self, client: &kube::Client) -> Api<DynamicObject> {
        match (&self.object.metadata.namespace, self.cache.rt.namespaced) {
            (Some(ns), true) => Api::namespaced_with(client.clone(), ns, &self.cache.resource),
            _ => Api::all_with(client.clone(), &self.cache.resource),
        }
    }

    fn name(&self) -> &str {
        self.object.metadata.name.as_deref().unwrap_or_default()
    }
}

impl GarbageCollector {
    async fn pass(&self) -> Result<(), kube::Error> {
        let nodes: Vec<Node> = self
            .caches
            .iter()
            .flat_map(|cache| {
                cache
                    .store
                    .state()
                    .into_iter()
                    .map(move |object| Node { cache, object })
            })
            .collect();
        let by_uid: HashMap<&str, &Node> = nodes.iter().map(|n| (n.uid(), n)).collect();
        let mut dependents: HashMap<&str, Vec<&Node>> = HashMap::new();
        for node in &nodes {
            for owner in node.object.metadata.owner_references.iter().flatten() {
                dependents.entry(owner.uid.as_str()).or_default().push(node);
            }
        }
        for node in nodes.iter().filter(|n| !n.deleting()) {
            let owners = node
                .object
                .metadata
                .owner_references
                .as_deref()
                .unwrap_or_default();
            let mut dangling = Vec::new();
            let mut unresolvable = false;
            for owner in owners {
                match by_uid.get(owner.uid.as_str()) {
                    Some(found) if can_own(found, node) => continue,
                    Some(_) => self.report_invalid_namespace(node, owner),
                    None => {}
                }
                match self.owner(node, owner).await? {
                    Owner::Present => {}
                    Owner::Absent => dangling.push(owner),
                    Owner::Unresolvable => unresolvable = true,
                }
            }
            // Upstream (since 1.20) leaves an object with an owner it cannot resolve alone entirely.
            if dangling.is_empty() || unresolvable {
                continue;
            }
            if dangling.len() == owners.len() {
                tracing::info!(
                    kind = node.cache.rt.kind,
                    name = node.name(),
                    "deleting an object whose owners are gone"
                );
                self.delete(node, PropagationPolicy::Background).await?;
            } else {
                let remaining: Vec<&OwnerReference> = owners
                    .iter()
                    .filter(|o| !dangling.iter().any(|d| d.uid == o.uid))
                    .collect();
                self.set_owners(node, &remaining).await?;
            }
        }
        // Pairs of objects that are gone will not be reported again.
        self.reported
            .lock()
            .expect("not poisoned")
            .retain(|(dependent, _)| by_uid.contains_key(dependent.as_str()));
        for node in nodes.iter().filter(|n| n.deleting()) {
            let deps = dependents.get(node.uid()).map(Vec::as_slice).unwrap_or_default();
            if node.has_finalizer(FINALIZER_ORPHAN) {
                for dependent in deps {
                    self.drop_owner(dependent, node.uid()).await?;
                }
                self.remove_finalizer(node, FINALIZER_ORPHAN).await?;
            } else if node.has_finalizer(FINALIZER_FOREGROUND) {
                if deps.is_empty() {
                    self.remove_finalizer(node, FINALIZER_FOREGROUND).await?;
                } else {
                    for dependent in deps.iter().filter(|d| !d.deleting()) {
                        self.delete(dependent, PropagationPolicy::Foreground).await?;
                    }
                }
            }
        }
        Ok(())
    }

    /// Whether `owner` of `node` exists where it could own `node`, confirmed with a live read (by name
    /// and uid).
    async fn owner(&self, node: &Node<'_>, owner: &OwnerReference) -> Result<Owner, kube::Error> {
        let Some(cache) = self
            .caches
            .iter()
            .find(|c| c.resource.api_version == owner.api_version && c.resource.kind == owner.kind)
        else {
            // A kind this server does not serve cannot be checked.
            return Ok(Owner::Unresolvable);
        };
        let api: Api<DynamicObject> = match (&node.object.metadata.namespace, cache.rt.namespaced) {
            (Some(ns), true) => Api::namespaced_with(self.client.clone(), ns, &cache.resource),
            (_, false) => Api::all_with(self.client.clone(), &cache.resource),
            // A cluster-scoped object naming a namespaced owner: which namespace would it be in?
            (None, true) => {
                self.report_invalid_namespace(node, owner);
                return Ok(Owner::Unresolvable);
            }
        };
        let live = api.get_opt(&owner.name).await?;
        let present = live.is_some_and(|live| live.metadata.uid.as_deref() == Some(owner.uid.as_str()));
        Ok(if present { Owner::Present } else { Owner::Absent })
    }

    /// Upstream's `reportInvalidNamespaceOwnerRef`, once per dependent and owner.
    fn report_invalid_namespace(&self, node: &Node<'_>, owner: &OwnerReference) {
        let pair = (node.uid().to_string(), owner.uid.clone());
        if !self.reported.lock().expect("not poisoned").insert(pair) {
            return;
        }
        let namespace = node.object.metadata.namespace.clone().unwrap_or_default();
        let regarding = ObjectReference {
            api_version: Some(node.cache.resource.api_version.clone()),
            kind: Some(node.cache.resource.kind.clone()),
            namespace: node.object.metadata.namespace.clone(),
            name: Some(node.name().to_string()),
            uid: Some(node.uid().to_string()),
            ..ObjectReference::default()
        };
        self.recorder.warning(
            &regarding,
            "OwnerRefInvalidNamespace",
            format!(
                "ownerRef [{}/{}, namespace: {namespace}, name: {}, uid: {}] does not exist in namespace {namespace:?}",
                owner.api_version, owner.kind, owner.name, owner.uid
            ),
        );
    }

    async fn delete(&self, node: &Node<'_>, policy: PropagationPolicy) -> Result<(), kube::Error> {
        let params = DeleteParams {
            propagation_policy: Some(policy),
            ..DeleteParams::default()
        };
        ignore_gone(
            node.api(&self.client)
                .delete(node.name(), &params)
                .await
                .map(|_| ()),
        )
    }

    /// Removes the owner reference to `owner_uid` from `node`, guarded by its resourceVersion.
    async fn drop_owner(&self, node: &Node<'_>, owner_uid: &str) -> Result<(), kube::Error> {
        let owners = node
            .object
            .metadata
            .owner_references
            .as_deref()
            .unwrap_or_default();
        let remaining: Vec<&OwnerReference> = owners.iter().filter(|o| o.uid != owner_uid).collect();
        self.set_owners(node, &remaining).await
    }

    /// Sets the owner references of `node`; an emptied list goes entirely, as upstream leaves it.
    async fn set_owners(&self, node: &Node<'_>, owners: &[&OwnerReference]) -> Result<(), kube::Error> {
        let references = if owners.is_empty() {
            serde_json::Value::Null
        } else {
            json!(owners)
        };
        self.set_metadata(node, "ownerReferences", references).await
    }

    async fn remove_finalizer(&self, node: &Node<'_>, finalizer: &str) -> Result<(), kube::Error> {
        let remaining: Vec<&String> = node
            .object
            .metadata
            .finalizers
            .iter()
            .flatten()
            .filter(|f| *f != finalizer)
            .collect();
        self.set_metadata(node, "finalizers", json!(remaining)).await
    }

    /// Sets one metadata field of `node`, guarded by the resourceVersion the cache saw it at.
    async fn set_metadata(
        &self,
        node: &Node<'_>,
        field: &str,
        value: serde_json::Value,
    ) -> Result<(), kube::Error> {
        let patch = json!({"metadata": {
            "resourceVersion": node.object.metadata.resource_version,
            field: value,
        }});
        let api = node.api(&self.client);
        ignore_gone(
            api.patch(node.name(), &PatchParams::default(), &Patch::Merge(patch))
                .await
                .map(|_| ()),
        )
    }
}

/// What the live check found of an owner.
enum Owner {
    Present,
    Absent,
    /// Of a kind this server does not serve, or namespaced while the dependent is cluster-scoped.
    Unresolvable,
}

/// Whether `owner` can own `dependent`: a cluster-scoped owner can own anything, a namespaced one only
/// objects in its own namespace.
fn can_own(owner: &Node<'_>, dependent: &Node<'_>) -> bool {
    !owner.cache.rt.namespaced || owner.object.metadata.namespace == dependent.object.metadata.namespace
}

/// A 404 (already gone) or 409 (changed since the cache saw it; the next pass sees the new state) is not
/// a failure of the pass.
fn ignore_gone(result: Result<(), kube::Error>) -> Result<(), kube::Error> {
    match result {
        Err(e) if matches!(api_code(&e), Some(404 | 409)) => Ok(()),
        other => other,
    }
}
