//! The Endpoints controller (kube-controller-manager's `endpoint-controller`): for every Service with a
//! selector, an Endpoints object of the same name listing the matching pods that have an IP, the ready ones
//! under `addresses` and the others under `notReadyAddresses` (all ready with
//! `publishNotReadyAddresses`), with the Service's ports resolved against each pod (a named `targetPort`
//! is looked up in the pod's container ports). Terminating and finished pods are left out. Endpoints
//! whose Service is gone are deleted.
//!
//! One pass looks at every Service (there are few), after any change to Services, Pods or Endpoints; the
//! EndpointSlices (`endpointslices`) are written from the same selection in the same loop.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;
use std::time::Duration;

use k8s_openapi::api::core::v1::{
    EndpointAddress, EndpointPort, EndpointSubset, Endpoints, ObjectReference, Pod, Service, ServiceSpec,
};
use k8s_openapi::api::discovery::v1::EndpointSlice;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;
use kube::api::{Api, DeleteParams};
use kube::runtime::reflector::{self, Store};
use kube::runtime::watcher;
use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;

use super::api_code;
use super::replicaset::is_ready;
use crate::telemetry::{ControllerMetrics, ReconcileFinished};

pub const NAME: &str = "endpoint-controller";
/// A pass after a burst of changes waits this long for the rest of the burst.
const DEBOUNCE: Duration = Duration::from_millis(20);

pub async fn run(client: kube::Client, metrics: ControllerMetrics, shutdown: CancellationToken) {
    let changed = Arc::new(Notify::new());
    let services = cache::<Service>(&client, &changed, &shutdown);
    let pods = cache::<Pod>(&client, &changed, &shutdown);
    let endpoints = cache::<Endpoints>(&client, &changed, &shutdown);
    let slices = cache::<EndpointSlice>(&client, &changed, &shutdown);
    for store in [
        slices.wait_until_ready().await.is_ok(),
        services.wait_until_ready().await.is_ok(),
        pods.wait_until_ready().await.is_ok(),
        endpoints.wait_until_ready().await.is_ok(),
    ] {
        if !store {
            return;
        }
    }
    tracing::info!("endpoints controller started");
    loop {
        let started = tokio::time::Instant::now();
        let result = pass(&client, &services, &pods, &endpoints).await;
        ReconcileFinished {
            controller: NAME,
            elapsed: started.elapsed(),
            error: result.as_ref().err().map(|e| e as &dyn std::fmt::Display),
        }
        .emit(&metrics);
        let started = tokio::time::Instant::now();
        let sliced = super::endpointslices::pass(&client, &services, &pods, &slices).await;
        ReconcileFinished {
            controller: super::endpointslices::NAME,
            elapsed: started.elapsed(),
            error: sliced.as_ref().err().map(|e| e as &dyn std::fmt::Display),
        }
        .emit(&metrics);
        let retry = result.is_err() || sliced.is_err();
        tokio::select! {
            _ = shutdown.cancelled() => return,
            _ = changed.notified() => tokio::time::sleep(DEBOUNCE).await,
            _ = tokio::time::sleep(Duration::from_secs(1)), if retry => {}
        }
    }
}

fn cache<K>(client: &kube::Client, changed: &Arc<Notify>, shutdown: &CancellationToken) -> Store<K>
where
    K: crate::controllers::Watched,
{
    let changed = changed.clone();
    super::cache(client, watcher::Config::default(), shutdown, NAME, move |_| {
        changed.notify_one()
    })
}

async fn pass(
    client: &kube::Client,
    services: &Store<Service>,
    pods: &Store<Pod>,
    endpoints: &Store<Endpoints>,
) -> Result<(), kube::Error> {
    let mut failure = None;
    let mut wanted: HashMap<(String, String), ()> = HashMap::new();
    for (service, members) in selections(services, pods) {
        let (Some(namespace), Some(name)) =
            (service.metadata.namespace.clone(), service.metadata.name.clone())
        else {
            continue;
        };
        wanted.insert((namespace.clone(), name.clone()), ());
        let desired = Endpoints {
            metadata: ObjectMeta {
                name: Some(name.clone()),
                namespace: Some(namespace.clone()),
                labels: service.metadata.labels.clone(),
                ..ObjectMeta::default()
            },
            subsets: subsets(&service, &members),
        };
        let current = endpoints.get(&reflector::ObjectRef::new(&name).within(&namespace));
        let api: Api<Endpoints> = Api::namespaced(client.clone(), &namespace);
        let unchanged = current
            .as_ref()
            .is_some_and(|c| c.subsets == desired.subsets && c.metadata.labels == desired.metadata.labels);
        let result = if unchanged {
            Ok(())
        } else {
            super::replace_or_create(&api, current.as_deref(), desired).await
        };
        if let Err(e) = result {
            tracing::debug!(service = %name, namespace = %namespace, error = %e, "writing endpoints failed");
            failure = Some(e);
        }
    }
    // Endpoints of Services that are gone (or lost their selector).
    for current in endpoints.state() {
        let (Some(namespace), Some(name)) =
            (current.metadata.namespace.clone(), current.metadata.name.clone())
        else {
            continue;
        };
        let service = services.get(&reflector::ObjectRef::new(&name).within(&namespace));
        if service.is_none() && !wanted.contains_key(&(namespace.clone(), name.clone())) {
            let api: Api<Endpoints> = Api::namespaced(client.clone(), &namespace);
            match api.delete(&name, &DeleteParams::default()).await {
                Err(e) if api_code(&e) != Some(404) => failure = Some(e),
                _ => {}
            }
        }
    }
    failure.map_or(Ok(()), Err)
}

/// The Services that select pods, each with the pods of its namespace it selects.
pub(super) fn selections(services: &Store<Service>, pods: &Store<Pod>) -> Vec<(Arc<Service>, Vec<Arc<Pod>>)> {
    let pods = pods.state();
    let mut out = Vec::new();
    for service in services.state() {
        let Some(selector) = service
            .spec
            .as_ref()
            .and_then(|s| s.selector.clone())
            .filter(|s| !s.is_empty())
        else {
            continue;
        };
        let namespace = service.metadata.namespace.clone();
        let members = pods
            .iter()
            .filter(|p| p.metadata.namespace == namespace)
            .filter(|p| {
                let labels = p.metadata.labels.clone().unwrap_or_default();
                selector.iter().all(|(k, v)| labels.get(k) == Some(v))
            })
            .cloned()
            .collect();
        out.push((service, members));
    }
    out
}

/// An endpoint's reference to its pod.
pub(super) fn pod_reference(pod: &Pod) -> ObjectReference {
    ObjectReference {
        kind: Some("Pod".into()),
        namespace: pod.metadata.namespace.clone(),
        name: pod.metadata.name.clone(),
        uid: pod.metadata.uid.clone(),
        ..ObjectReference::default()
    }
}

/// A pod's IP when it is to be listed at all: it has one and has not finished.
pub(super) fn listed_ip(pod: &Pod) -> Option<String> {
    let status = pod.status.as_ref()?;
    if matches!(status.phase.as_deref(), Some("Succeeded" | "Failed")) {
        return None;
    }
    status.pod_ip.clone().filter(|ip| !ip.is_empty())
}

/// The Service's ports resolved against `pod` (a named `targetPort` looked up in its container ports;
/// a port the pod does not have is left out).
pub(super) fn resolve_ports(spec: &ServiceSpec, pod: &Pod) -> Vec<ResolvedPort> {
    let mut ports = Vec::new();
    for port in spec.ports.iter().flatten() {
        let target = match &port.target_port {
            Some(IntOrString::Int(n)) => Some(*n),
            Some(IntOrString::String(name)) => container_port(pod, name),
            None => Some(port.port),
        };
        if let Some(target) = target {
            ports.push((
                port.name.clone().unwrap_or_default(),
                target,
                port.protocol.clone().unwrap_or_else(|| "TCP".into()),
            ));
        }
    }
    ports
}

/// A Service port resolved against a pod: name, target port, protocol.
pub(super) type ResolvedPort = (String, i32, String);
/// The ready and the not-ready addresses of one subset.
type Addresses = (Vec<EndpointAddress>, Vec<EndpointAddress>);

/// The subsets of a Service's Endpoints: pods grouped by their resolved ports (one subset in the usual
/// case), addresses sorted by IP.
fn subsets(service: &Service, pods: &[Arc<Pod>]) -> Option<Vec<EndpointSubset>> {
    let spec = service.spec.clone().unwrap_or_default();
    let publish_all = spec.publish_not_ready_addresses == Some(true);
    let mut groups: BTreeMap<Vec<ResolvedPort>, Addresses> = BTreeMap::new();
    for pod in pods {
        if pod.metadata.deletion_timestamp.is_some() && !publish_all {
            continue;
        }
        let Some(ip) = listed_ip(pod) else { continue };
        let ports = resolve_ports(&spec, pod);
        let address = EndpointAddress {
            ip,
            node_name: pod.spec.as_ref().and_then(|s| s.node_name.clone()),
            target_ref: Some(pod_reference(pod)),
            hostname: None,
        };
        let (ready, not_ready) = groups.entry(ports).or_default();
        if publish_all || is_ready(pod) {
            ready.push(address);
        } else {
            not_ready.push(address);
        }
    }
    let subsets: Vec<EndpointSubset> = groups
        .into_iter()
        .map(|(ports, (mut ready, mut not_ready))| {
            ready.sort_by(|a, b| a.ip.cmp(&b.ip));
            not_ready.sort_by(|a, b| a.ip.cmp(&b.ip));
            EndpointSubset {
                addresses: (!ready.is_empty()).then_some(ready),
                not_ready_addresses: (!not_ready.is_empty()).then_some(not_ready),
                ports: Some(
                    ports
                        .into_iter()
                        .map(|(name, port, protocol)| EndpointPort {
                            name: (!name.is_empty()).then_some(name),
                            port,
                            protocol: Some(protocol),
                            app_protocol: None,
                        })
                        .collect(),
                ),
            }
        })
        .collect();
    (!subsets.is_empty()).then_some(subsets)
}

fn container_port(pod: &Pod, name: &str) -> Option<i32> {
    pod.spec
        .as_ref()?
        .containers
        .iter()
        .flat_map(|c| c.ports.iter().flatten())
        .find(|p| p.name.as_deref() == Some(name))
        .map(|p| p.container_port)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pod(name: &str, ip: &str, ready: bool, terminating: bool) -> Arc<Pod> {
        Arc::new(
            serde_json::from_value(serde_json::json!({
                "metadata": {"name": name, "namespace": "default", "uid": name,
                    "deletionTimestamp": if terminating { Some("2026-01-01T00:00:00Z") } else { None }},
                "spec": {"nodeName": "n", "containers": [{"name": "c", "ports": [{"name": "http", "containerPort": 8080}]}]},
                "status": {"phase": "Running", "podIP": ip,
                    "conditions": [{"type": "Ready", "status": if ready { "True" } else { "False" }}]}
            }))
            .unwrap(),
        )
    }

    #[test]
    fn ready_and_not_ready_addresses_with_named_ports() {
        let service: Service = serde_json::from_value(serde_json::json!({
            "metadata": {"name": "web", "namespace": "default"},
            "spec": {"selector": {"app": "web"}, "ports": [{"name": "web", "port": 80, "targetPort": "http"}]}
        }))
        .unwrap();
        let pods = [
            pod("b", "127.100.0.9", true, false),
            pod("a", "127.100.0.3", true, false),
            pod("c", "127.100.0.4", false, false),
            pod("d", "127.100.0.5", true, true),
        ];
        let subsets = subsets(&service, &pods).unwrap();
        assert_eq!(subsets.len(), 1);
        let ips = |list: &Option<Vec<EndpointAddress>>| {
            list.iter().flatten().map(|a| a.ip.clone()).collect::<Vec<_>>()
        };
        assert_eq!(ips(&subsets[0].addresses), ["127.100.0.3", "127.100.0.9"]);
        assert_eq!(ips(&subsets[0].not_ready_addresses), ["127.100.0.4"]);
        assert_eq!(subsets[0].ports.as_ref().unwrap()[0].port, 8080);
    }
}
