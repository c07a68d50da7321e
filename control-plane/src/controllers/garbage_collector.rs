//! The garbage collector: deletes objects whose owners are all gone, and carries out the Foreground and
//! Orphan deletion policies (k/k `pkg/controller/garbagecollector`).
//!
//! It keeps a cache of every stored type (one watcher each) and, after any change, makes one pass over
//! the ownership graph built from that cache. That is not kube-runtime's per-object `Controller`: what
//! triggers work is cross-type (a Deployment's deletion concerns its ReplicaSets), and at one machine's
//! scale a pass over the whole graph costs less than keeping a persistent one in step. Before deleting a
//! dependent as dangling it confirms the owners' absence with live reads, as upstream does, so a cache that
//! lags behind a just-created owner never costs an object.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::time::Duration;

use futures::StreamExt;
use kube::api::{Api, DeleteParams, DynamicObject, Patch, PatchParams, PropagationPolicy};
use kube::core::ApiResource;
use kube::runtime::reflector::{Store, store::Writer};
use kube::runtime::{WatchStreamExt, watcher};
use serde_json::json;
use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;

use super::{api_code, api_resource, stored_types};
use crate::api::objects::{FINALIZER_FOREGROUND, FINALIZER_ORPHAN};
use crate::api::resources::ResourceType;

/// A pass runs this long after the first change it answers, so bursts of changes share one pass.
const DEBOUNCE: Duration = Duration::from_millis(50);
/// A pass also runs this often with no change, to retry what failed.
const RESYNC: Duration = Duration::from_secs(30);

struct Cache {
    rt: &'static ResourceType,
    resource: ApiResource,
    store: Store<DynamicObject>,
}

pub async fn run(client: kube::Client, shutdown: CancellationToken) {
    let changed = Arc::new(Notify::new());
    let mut caches = Vec::new();
    for rt in stored_types() {
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
        let shutdown = shutdown.clone();
        tokio::spawn(async move {
            let mut stream = std::pin::pin!(stream);
            loop {
                let event = tokio::select! {
                    _ = shutdown.cancelled() => return,
                    event = stream.next() => event,
                };
                match event {
                    Some(Ok(_)) => changed.notify_one(),
                    Some(Err(e)) => {
                        tracing::debug!(error = %e, resource = %rt.plural, "garbage collector watch error")
                    }
                    None => return,
                }
            }
        });
    }
    for cache in &caches {
        tokio::select! {
            _ = shutdown.cancelled() => return,
            _ = cache.store.wait_until_ready() => {}
        }
    }
    tracing::info!("garbage collector started");
    let gc = GarbageCollector { client, caches };
    loop {
        if let Err(e) = gc.pass().await {
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
        let uids: HashSet<&str> = nodes.iter().map(Node::uid).collect();
        let mut dependents: HashMap<&str, Vec<&Node>> = HashMap::new();
        for node in &nodes {
            for owner in node.object.metadata.owner_references.iter().flatten() {
                dependents.entry(owner.uid.as_str()).or_default().push(node);
            }
        }
        for node in &nodes {
            let owners = node
                .object
                .metadata
                .owner_references
                .as_deref()
                .unwrap_or_default();
            if !owners.is_empty()
                && !node.deleting()
                && owners.iter().all(|o| !uids.contains(o.uid.as_str()))
                && self.owners_absent(node).await?
            {
                tracing::info!(
                    kind = node.cache.rt.kind,
                    name = node.name(),
                    "deleting an object whose owners are gone"
                );
                self.delete(node, PropagationPolicy::Background).await?;
            }
        }
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

    /// Confirms with live reads that no owner of `node` exists (by name and uid).
    async fn owners_absent(&self, node: &Node<'_>) -> Result<bool, kube::Error> {
        for owner in node.object.metadata.owner_references.iter().flatten() {
            let Some(cache) = self
                .caches
                .iter()
                .find(|c| c.resource.api_version == owner.api_version && c.resource.kind == owner.kind)
            else {
                // An owner of a kind this server does not serve cannot be checked; leave the dependent be.
                return Ok(false);
            };
            let api: Api<DynamicObject> = match (&node.object.metadata.namespace, cache.rt.namespaced) {
                (Some(ns), true) => Api::namespaced_with(self.client.clone(), ns, &cache.resource),
                _ => Api::all_with(self.client.clone(), &cache.resource),
            };
            if let Some(live) = api.get_opt(&owner.name).await?
                && live.metadata.uid.as_deref() == Some(owner.uid.as_str())
            {
                return Ok(false);
            }
        }
        Ok(true)
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
        let remaining: Vec<_> = node
            .object
            .metadata
            .owner_references
            .iter()
            .flatten()
            .filter(|o| o.uid != owner_uid)
            .collect();
        // An emptied list goes entirely, as upstream leaves it.
        let references = if remaining.is_empty() {
            serde_json::Value::Null
        } else {
            json!(remaining)
        };
        let patch = json!({"metadata": {
            "resourceVersion": node.object.metadata.resource_version,
            "ownerReferences": references,
        }});
        ignore_gone(
            node.api(&self.client)
                .patch(node.name(), &PatchParams::default(), &Patch::Merge(patch))
                .await
                .map(|_| ()),
        )
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
        let patch = json!({"metadata": {
            "resourceVersion": node.object.metadata.resource_version,
            "finalizers": remaining,
        }});
        ignore_gone(
            node.api(&self.client)
                .patch(node.name(), &PatchParams::default(), &Patch::Merge(patch))
                .await
                .map(|_| ()),
        )
    }
}

/// A 404 (already gone) or 409 (changed since the cache saw it; the next pass sees the new state) is not
/// a failure of the pass.
fn ignore_gone(result: Result<(), kube::Error>) -> Result<(), kube::Error> {
    match result {
        Err(e) if matches!(api_code(&e), Some(404 | 409)) => Ok(()),
        other => other,
    }
}
