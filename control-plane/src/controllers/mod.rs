//! The controllers of the control plane (kube-controller-manager's role). Each talks to the API through a
//! `kube::Client`, exactly as it would to a real cluster.

pub mod deployment;
pub mod endpoints;
pub mod endpointslices;
pub mod garbage_collector;
pub mod hpa;
pub mod namespace;
pub mod node_lifecycle;
pub mod replicaset;

use std::collections::BTreeMap;
use std::sync::Arc;

use k8s_openapi::apimachinery::pkg::apis::meta::v1::LabelSelector;
use kube::core::ApiResource;
use kube::runtime::controller::Action;
use tokio_util::sync::CancellationToken;

use crate::api::resources::{self, ResourceType};
use crate::telemetry::{ControllerMetrics, ReconcileFinished};

/// The `ApiResource` of a served type, for dynamic clients.
pub fn api_resource(rt: &ResourceType) -> ApiResource {
    ApiResource {
        group: rt.group.to_string(),
        version: rt.version.to_string(),
        api_version: rt.api_version(),
        kind: rt.kind.to_string(),
        plural: rt.plural.to_string(),
    }
}

/// Every stored type once (served views of another type's storage left out).
pub fn stored_types() -> impl Iterator<Item = &'static ResourceType> {
    resources::RESOURCES.iter().filter(|r| !r.is_view())
}

/// The HTTP code of an API error, if the error is one.
pub fn api_code(error: &kube::Error) -> Option<u16> {
    match error {
        kube::Error::Api(status) => Some(status.code),
        _ => None,
    }
}

/// A `metav1.LabelSelector` as a list query (`app=web,tier in (a,b),!canary`); empty for an empty
/// selector.
pub fn selector_query(selector: &LabelSelector) -> String {
    let mut parts: Vec<String> = selector
        .match_labels
        .iter()
        .flatten()
        .map(|(k, v)| format!("{k}={v}"))
        .collect();
    for requirement in selector.match_expressions.iter().flatten() {
        let values = requirement.values.clone().unwrap_or_default().join(",");
        let key = &requirement.key;
        parts.push(match requirement.operator.as_str() {
            "In" => format!("{key} in ({values})"),
            "NotIn" => format!("{key} notin ({values})"),
            "Exists" => key.clone(),
            _ => format!("!{key}"),
        });
    }
    parts.join(",")
}

/// Whether `labels` satisfy `selector` (an empty selector matches everything here; callers decide what
/// an empty selector means for them).
pub fn selector_matches(selector: &LabelSelector, labels: &BTreeMap<String, String>) -> bool {
    let exact = selector
        .match_labels
        .iter()
        .flatten()
        .all(|(k, v)| labels.get(k) == Some(v));
    exact
        && selector.match_expressions.iter().flatten().all(|r| {
            let values = r.values.clone().unwrap_or_default();
            let value = labels.get(&r.key);
            match r.operator.as_str() {
                "In" => value.is_some_and(|v| values.contains(v)),
                "NotIn" => value.is_none_or(|v| !values.contains(v)),
                "Exists" => value.is_some(),
                _ => value.is_none(),
            }
        })
}

/// Drives a reflector's watch stream in a task of its own until `shutdown`, calling `on_event` for every
/// change it brings (the caller's cue to look at its caches again).
pub fn drive_reflector<K, S>(
    stream: S,
    shutdown: CancellationToken,
    who: &'static str,
    mut on_event: impl FnMut(&kube::runtime::watcher::Event<K>) + Send + 'static,
) where
    K: Send + 'static,
    S: futures::Stream<Item = Result<kube::runtime::watcher::Event<K>, kube::runtime::watcher::Error>>
        + Send
        + 'static,
{
    use futures::StreamExt;
    tokio::spawn(async move {
        let mut stream = std::pin::pin!(stream);
        loop {
            let event = tokio::select! {
                _ = shutdown.cancelled() => return,
                event = stream.next() => event,
            };
            match event {
                Some(Ok(event)) => on_event(&event),
                Some(Err(e)) => tracing::debug!(error = %e, who, "watch error"),
                None => return,
            }
        }
    });
}

/// What a watch and a reflector cache can hold: a cluster API type, decodable, shareable.
pub trait Watched:
    kube::Resource<DynamicType = ()>
    + Clone
    + std::fmt::Debug
    + serde::de::DeserializeOwned
    + Send
    + Sync
    + 'static
{
}

impl<T> Watched for T where
    T: kube::Resource<DynamicType = ()>
        + Clone
        + std::fmt::Debug
        + serde::de::DeserializeOwned
        + Send
        + Sync
        + 'static
{
}

/// A cache of the `K` objects `config` selects, kept by a reflector in a task of its own until `shutdown`;
/// `on_event` sees every change it brings.
pub fn cache<K>(
    client: &kube::Client,
    config: kube::runtime::watcher::Config,
    shutdown: &CancellationToken,
    who: &'static str,
    on_event: impl FnMut(&kube::runtime::watcher::Event<K>) + Send + 'static,
) -> kube::runtime::reflector::Store<K>
where
    K: Watched,
{
    use kube::runtime::WatchStreamExt;
    let (reader, writer) = kube::runtime::reflector::store::<K>();
    let stream = kube::runtime::watcher(kube::Api::<K>::all(client.clone()), config)
        .default_backoff()
        .reflect(writer);
    drive_reflector(stream, shutdown.clone(), who, on_event);
    reader
}

/// Writes `desired` over `current` (its name and resourceVersion taken over: a PUT that fails on a
/// concurrent change), or creates it when there is none (one that exists already is fine: a cache that
/// has not seen it yet).
pub async fn replace_or_create<K>(
    api: &kube::Api<K>,
    current: Option<&K>,
    mut desired: K,
) -> Result<(), kube::Error>
where
    K: kube::Resource + Clone + std::fmt::Debug + serde::Serialize + serde::de::DeserializeOwned,
{
    let params = kube::api::PostParams::default();
    match current {
        Some(current) => {
            let name = current.meta().name.clone().unwrap_or_default();
            desired.meta_mut().name = Some(name.clone());
            desired.meta_mut().resource_version = current.meta().resource_version.clone();
            api.replace(&name, &params, &desired).await.map(|_| ())
        }
        None => match api.create(&params, &desired).await {
            Err(e) if api_code(&e) == Some(409) => Ok(()),
            other => other.map(|_| ()),
        },
    }
}

/// `reconcile`, timed and counted in the controller metrics under `name`.
pub fn timed<K, C, E, F, Fut>(
    name: &'static str,
    metrics: ControllerMetrics,
    reconcile: F,
) -> impl FnMut(Arc<K>, Arc<C>) -> futures::future::BoxFuture<'static, Result<Action, E>>
where
    K: Send + Sync + 'static,
    C: Send + Sync + 'static,
    E: std::fmt::Display + Send + 'static,
    F: Fn(Arc<K>, Arc<C>) -> Fut + Clone + Send + 'static,
    Fut: std::future::Future<Output = Result<Action, E>> + Send + 'static,
{
    move |object, context| {
        let (metrics, reconcile) = (metrics.clone(), reconcile.clone());
        Box::pin(async move {
            let started = std::time::Instant::now();
            let span = tracing::info_span!("reconcile", controller = name);
            let result = tracing::Instrument::instrument(reconcile(object, context), span).await;
            let error = result.as_ref().err().map(|e| e as &dyn std::fmt::Display);
            ReconcileFinished {
                controller: name,
                elapsed: started.elapsed(),
                error,
            }
            .emit(&metrics);
            result
        })
    }
}

/// Runs a kube-runtime controller of `K` that also reacts to the `Child` objects it controls, until
/// `shutdown`: reconciles timed (`timed`), failures retried after a second.
pub async fn run_controller<K, Child, C, E, F, Fut>(
    client: &kube::Client,
    name: &'static str,
    context: Arc<C>,
    reconcile: F,
    metrics: ControllerMetrics,
    shutdown: CancellationToken,
) where
    K: Watched,
    Child: Watched,
    C: Send + Sync + 'static,
    E: std::error::Error + Send + 'static,
    F: Fn(Arc<K>, Arc<C>) -> Fut + Clone + Send + 'static,
    Fut: std::future::Future<Output = Result<Action, E>> + Send + 'static,
{
    use futures::StreamExt;
    use kube::runtime::{Controller, watcher};
    let objects: kube::Api<K> = kube::Api::all(client.clone());
    let children: kube::Api<Child> = kube::Api::all(client.clone());
    Controller::new(objects, watcher::Config::default())
        .owns(children, watcher::Config::default())
        .graceful_shutdown_on(async move { shutdown.cancelled().await })
        .run(
            timed(name, metrics, reconcile),
            |_, _, _| Action::requeue(std::time::Duration::from_secs(1)),
            context,
        )
        .for_each(|result| async move {
            if let Err(e) = result {
                tracing::debug!(error = %e, controller = name, "reconcile failed");
            }
        })
        .await;
}

/// The controllers' settings.
#[derive(Clone, Debug, Default)]
pub struct ControllersConfig {
    pub node_lifecycle: node_lifecycle::NodeLifecycleConfig,
    pub hpa: hpa::HpaConfig,
}

/// Starts every controller, each recording its events under its upstream component name; they stop with
/// `shutdown`.
pub fn start(
    config: ControllersConfig,
    client: kube::Client,
    events: &eventer::Broadcaster,
    metrics: ControllerMetrics,
    hpa_decisions: Arc<hpa::decisions::Decisions>,
    shutdown: CancellationToken,
) {
    let hpa = Arc::new(hpa::Context::new(
        client.clone(),
        events.recorder(hpa::COMPONENT, None),
        config.hpa,
        hpa_decisions,
    ));
    tokio::spawn(hpa::run(hpa, metrics.clone(), shutdown.clone()));
    let gc_events = events.recorder(garbage_collector::COMPONENT, None);
    tokio::spawn(garbage_collector::run(
        client.clone(),
        gc_events,
        metrics.clone(),
        shutdown.clone(),
    ));
    let node_events = events.recorder(node_lifecycle::COMPONENT, None);
    tokio::spawn(node_lifecycle::run(
        config.node_lifecycle,
        client.clone(),
        node_events,
        metrics.clone(),
        shutdown.clone(),
    ));
    let host = crate::node::host::hostname();
    let scheduler_events = events.events_recorder(crate::scheduler::NAME, &host);
    tokio::spawn(crate::scheduler::run(
        client.clone(),
        scheduler_events,
        metrics.clone(),
        shutdown.clone(),
    ));
    let deployment_events = events.recorder(deployment::COMPONENT, None);
    tokio::spawn(deployment::run(
        client.clone(),
        deployment_events,
        metrics.clone(),
        shutdown.clone(),
    ));
    let rs_events = events.recorder(replicaset::COMPONENT, None);
    tokio::spawn(replicaset::run(
        client.clone(),
        rs_events,
        metrics.clone(),
        shutdown.clone(),
    ));
    tokio::spawn(endpoints::run(client.clone(), metrics.clone(), shutdown.clone()));
    tokio::spawn(namespace::run(client, metrics, shutdown));
}

#[cfg(test)]
mod tests {
    use k8s_openapi::apimachinery::pkg::apis::meta::v1::LabelSelectorRequirement;

    use super::*;

    #[test]
    fn label_selectors_as_queries_and_matches() {
        let selector = LabelSelector {
            match_labels: Some(BTreeMap::from([("app".to_string(), "web".to_string())])),
            match_expressions: Some(vec![
                LabelSelectorRequirement {
                    key: "tier".into(),
                    operator: "In".into(),
                    values: Some(vec!["a".into(), "b".into()]),
                },
                LabelSelectorRequirement {
                    key: "canary".into(),
                    operator: "DoesNotExist".into(),
                    values: None,
                },
            ]),
        };
        assert_eq!(selector_query(&selector), "app=web,tier in (a,b),!canary");
        let labels = |pairs: &[(&str, &str)]| {
            pairs
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect()
        };
        assert!(selector_matches(
            &selector,
            &labels(&[("app", "web"), ("tier", "a")])
        ));
        assert!(!selector_matches(
            &selector,
            &labels(&[("app", "web"), ("tier", "c")])
        ));
        assert!(!selector_matches(
            &selector,
            &labels(&[("app", "web"), ("tier", "a"), ("canary", "1")])
        ));
        assert_eq!(selector_query(&LabelSelector::default()), "");
    }
}
