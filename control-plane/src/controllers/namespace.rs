//! The namespace lifecycle controller: when a namespace is deleted, delete everything in it, then release
//! the namespace by clearing its `spec.finalizers` through `/finalize` (k/k `pkg/controller/namespace`).

use std::sync::Arc;
use std::time::Duration;

use futures::StreamExt;
use k8s_openapi::api::core::v1::Namespace;
use kube::api::{Api, DeleteParams, DynamicObject, ListParams, PostParams};
use kube::runtime::controller::{Action, Controller};
use kube::runtime::watcher;
use tokio_util::sync::CancellationToken;

use super::{api_code, api_resource, stored_types};

/// What reconciling needs.
pub struct Context {
    pub client: kube::Client,
}

#[derive(Debug, thiserror::Error)]
pub enum NamespaceError {
    /// An API call failed; retried with backoff.
    #[error("namespace cleanup: {0}")]
    Api(#[from] kube::Error),
}

pub async fn run(
    client: kube::Client,
    metrics: crate::telemetry::ControllerMetrics,
    shutdown: CancellationToken,
) {
    let api: Api<Namespace> = Api::all(client.clone());
    let context = Arc::new(Context { client });
    Controller::new(api, watcher::Config::default())
        .graceful_shutdown_on(async move { shutdown.cancelled().await })
        .run(
            super::timed("namespace", metrics, reconcile),
            error_policy,
            context,
        )
        .for_each(|result| async move {
            if let Err(e) = result {
                tracing::debug!(error = %e, "namespace reconcile failed");
            }
        })
        .await;
}

pub async fn reconcile(namespace: Arc<Namespace>, ctx: Arc<Context>) -> Result<Action, NamespaceError> {
    if namespace.metadata.deletion_timestamp.is_none() {
        return Ok(Action::await_change());
    }
    let name = namespace.metadata.name.clone().unwrap_or_default();
    let mut remaining = 0;
    for rt in stored_types().filter(|r| r.namespaced) {
        let api: Api<DynamicObject> = Api::namespaced_with(ctx.client.clone(), &name, &api_resource(rt));
        let objects = api.list(&ListParams::default()).await?;
        remaining += objects.items.len();
        for object in objects
            .items
            .iter()
            .filter(|o| o.metadata.deletion_timestamp.is_none())
        {
            let object_name = object.metadata.name.clone().unwrap_or_default();
            match api.delete(&object_name, &DeleteParams::background()).await {
                Err(e) if api_code(&e) != Some(404) => return Err(e.into()),
                _ => {}
            }
        }
    }
    if remaining > 0 {
        // Objects with finalizers or grace periods take their time; look again soon.
        return Ok(Action::requeue(Duration::from_secs(1)));
    }
    let mut released = (*namespace).clone();
    if let Some(spec) = released.spec.as_mut() {
        spec.finalizers = Some(Vec::new());
    }
    let api: Api<Namespace> = Api::all(ctx.client.clone());
    match api
        .replace_subresource("finalize", &name, &PostParams::default(), &released)
        .await
    {
        // Gone already, or changed since: the change brings it back here.
        Err(e) if !matches!(api_code(&e), Some(404 | 409)) => return Err(e.into()),
        _ => {}
    }
    tracing::info!(namespace = %name, "namespace emptied and released");
    Ok(Action::await_change())
}

pub fn error_policy(_namespace: Arc<Namespace>, error: &NamespaceError, _ctx: Arc<Context>) -> Action {
    tracing::warn!(error = %error, "namespace cleanup failed; retrying");
    Action::requeue(Duration::from_secs(5))
}
