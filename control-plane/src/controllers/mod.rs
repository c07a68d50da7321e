//! The controllers of the control plane (kube-controller-manager's role). Each talks to the API through a
//! `kube::Client`, exactly as it would to a real cluster.

pub mod garbage_collector;
pub mod namespace;
pub mod node_lifecycle;

use kube::core::ApiResource;
use tokio_util::sync::CancellationToken;

use crate::api::resources::{self, ResourceType};

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

/// The controllers' settings.
#[derive(Clone, Debug, Default)]
pub struct ControllersConfig {
    pub node_lifecycle: node_lifecycle::NodeLifecycleConfig,
}

/// Starts every controller, each recording its events under its upstream component name; they stop with
/// `shutdown`.
pub fn start(
    config: ControllersConfig,
    client: kube::Client,
    events: &eventer::Broadcaster,
    shutdown: CancellationToken,
) {
    let gc_events = events.recorder(garbage_collector::COMPONENT, None);
    tokio::spawn(garbage_collector::run(
        client.clone(),
        gc_events,
        shutdown.clone(),
    ));
    let node_events = events.recorder(node_lifecycle::COMPONENT, None);
    tokio::spawn(node_lifecycle::run(
        config.node_lifecycle,
        client.clone(),
        node_events,
        shutdown.clone(),
    ));
    let host = std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|h| h.trim().to_string())
        .unwrap_or_default();
    let scheduler_events = events.events_recorder(crate::scheduler::NAME, &host);
    tokio::spawn(crate::scheduler::run(
        client.clone(),
        scheduler_events,
        shutdown.clone(),
    ));
    tokio::spawn(namespace::run(client, shutdown));
}
